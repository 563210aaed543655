"""Pulumi.yaml's `config:` block and the README's key table, generated from the stack config schema.

Each `glance:*` key is declared once, in components/stack_input.py (`StackConfig`: type, default,
description). This writes what Pulumi.yaml and the README say about the keys:

    venv/bin/python -m components.schema_docs --write   # rewrite both
    venv/bin/python -m components.schema_docs --check   # exit 1 when either differs

Only Pulumi.yaml's `config:` block and the README's lines between the two table markers are
rewritten. The rules the generator keeps:

- a key without a default of its own (derived from other keys, or simply absent) declares the empty
  value of its type ("", 0, []): Pulumi makes a key without a default required, and the program
  reads that value as unset;
- only the required credentials are `secret: true`: Pulumi refuses a default for a secret key.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from components.stack_input import KEYS, NAMESPACE, Key

ROOT = Path(__file__).resolve().parent.parent
PULUMI_YAML = ROOT / "Pulumi.yaml"
README = ROOT / "README.md"
COMMAND = "venv/bin/python -m components.schema_docs --write"
TABLE_BEGIN = "<!-- stack-config-table:begin -->"
TABLE_END = "<!-- stack-config-table:end -->"
CONFIG_COMMENT = (
    "Generated from components/stack_input.py, where each key is declared: edit the keys there and run",
    f"`{COMMAND}`.",
    "Keys without a default are required. A key whose default is derived from other keys declares the",
    'empty value of its type ("", 0, []), which the program reads as unset: see the README.',
    "Only the required credentials carry `secret: true`, because Pulumi refuses a default for a secret key;",
    "the program refuses the optional ones unless they are set with `pulumi config set --secret`.",
)
# A link to a README section: [Image stores](#image-stores).
_SECTION_LINK = re.compile(r"\[([^\]]+)\]\((#[^)]+)\)")


def _scalar(value: Any) -> str:
    """`value` as one line of YAML (quoted only where YAML needs it)."""
    text: str = yaml.safe_dump(value, default_flow_style=True, width=sys.maxsize, allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...")


def config_block() -> str:
    """Pulumi.yaml's `config:` block."""
    lines = ["config:", *(f"  # {line}" for line in CONFIG_COMMENT)]
    for key in KEYS.values():
        lines += [f"  {NAMESPACE}:{key.name}:", f"    type: {key.type}"]
        if key.items is not None:
            lines += ["    items:", f"      type: {key.items}"]
        if key.secret and key.required:
            lines.append("    secret: true")
        # Outside the README, a section link names the README's section.
        description = _SECTION_LINK.sub(r"README.md\2", key.description)
        lines.append(f"    description: {_scalar(description)}")
        if not key.required:
            lines.append(f"    default: {_scalar(key.schema_default)}")
    return "\n".join(lines) + "\n"


def _type(key: Key) -> str:
    kind = "array of objects" if key.items == "object" else key.type
    if not key.secret:
        return kind
    return f"{kind}, secret" if key.required else f"{kind} (set as secret)"


def _default(key: Key) -> str:
    if key.required:
        return "**required**"
    if key.default is None:
        return "derived" if key.derived else "unset"
    return f"`{_scalar(key.default)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def readme_table() -> str:
    """The README's key table."""
    rows = [
        f"| `{NAMESPACE}:{key.name}` | {_type(key)} | {_default(key)} | {_cell(key.description)} |"
        for key in KEYS.values()
    ]
    return "\n".join(["| key | type | default | meaning and rules |", "|---|---|---|---|", *rows]) + "\n"


def with_config_block(text: str) -> str:
    """Pulumi.yaml's text with its `config:` block (up to the next top-level line) generated."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == "config:"), None)
    if start is None:
        raise ValueError("Pulumi.yaml has no top-level `config:` line")
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].strip() and not lines[i].startswith((" ", "\t"))),
        len(lines),
    )
    return "".join(lines[:start]) + config_block() + "".join(lines[end:])


def with_readme_table(text: str) -> str:
    """The README's text with the lines between the table markers generated."""
    lines = text.splitlines(keepends=True)
    marks = [i for i, line in enumerate(lines) if line.strip() in (TABLE_BEGIN, TABLE_END)]
    if len(marks) != 2 or lines[marks[0]].strip() != TABLE_BEGIN:
        raise ValueError(f"README.md needs one {TABLE_BEGIN} line, then one {TABLE_END} line")
    begin, end = marks
    return "".join(lines[: begin + 1]) + readme_table() + "".join(lines[end:])


GENERATED = ((PULUMI_YAML, with_config_block), (README, with_readme_table))


def stale() -> list[Path]:
    """The files whose generated part differs from what the schema says."""
    return [path for path, generate in GENERATED if generate(path.read_text()) != path.read_text()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite Pulumi.yaml's config block and the README table")
    mode.add_argument("--check", action="store_true", help="exit 1 when either differs from the schema")
    args = parser.parse_args(argv)
    if args.check:
        paths = stale()
        for path in paths:
            print(f"{path.name} differs from components/stack_input.py: run `{COMMAND}`")
        return 1 if paths else 0
    for path, generate in GENERATED:
        text = path.read_text()
        if generate(text) != text:
            path.write_text(generate(text))
            print(f"rewrote {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
