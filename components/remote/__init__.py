"""Scripts that run on the controller (or, for Keystone calls, beside the engine).

They are plain Python modules so they are linted and tested like the rest; the
components pass their source to `python3 -c` and their parameters, secrets among
them, on standard input.
"""

from importlib.resources import files

from components.scripts import run_python


def script_source(module: str) -> str:
    return files(__name__).joinpath(f"{module}.py").read_text(encoding="utf-8")


def run_script(module: str, *args: str, ca_bundle: str | None = None) -> str:
    """The command that runs a script; with `ca_bundle` (which its JSON parameters then carry too),
    inside with_ca, so that its https calls trust those CAs only."""
    if ca_bundle is None:
        return run_python(script_source(module), *args)
    return run_python(script_source("with_ca"), script_source(module), *args)
