"""Tools run from the repository before the virtualenv exists: Python standard library only."""
