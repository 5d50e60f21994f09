"""Session lifecycle: storage, worker assignment, start and end."""
