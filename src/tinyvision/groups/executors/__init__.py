"""Where the points of a group run: local worker processes, or Ray tasks."""
