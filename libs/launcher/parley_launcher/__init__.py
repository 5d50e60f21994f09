"""The `parley` command: runs the whole platform on one machine."""
