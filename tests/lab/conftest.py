import sys
from pathlib import Path

# `lab` is a top-level package of the repo; make it importable however pytest is run.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from lab.pytest_plugin import lab_host  # noqa: E402,F401  (session fixture, shared)
