"""Scripts that run on the controller (or, for Keystone calls, beside the engine).

They are plain Python modules so they are linted and tested like the rest; the
components pass their source to `python3 -c` and their parameters, secrets among
them, on standard input.
"""

from importlib.resources import files


def script_source(module: str) -> str:
    return files(__name__).joinpath(f"{module}.py").read_text(encoding="utf-8")
