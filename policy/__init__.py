"""The CrossGuard policy pack (run as a directory by the engine: see __main__.py)."""
