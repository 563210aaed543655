import sys
from pathlib import Path

# The program imports `components` from the project root, as the Pulumi language host runs it.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
