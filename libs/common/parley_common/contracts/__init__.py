"""Every message schema Parley exchanges across a process boundary, defined once."""
