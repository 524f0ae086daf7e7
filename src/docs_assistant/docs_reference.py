"""The configuration reference page, rendered from the settings model so that it cannot drift from it.

`python -m docs_assistant.docs_reference` (from the repository root) writes `docs/reference/configuration.md`;
tests/unit/test_docs.py fails when the committed page differs from what `config_reference_markdown` renders.
Every setting gets its environment variable, type, default and description, section by section, in the
order `Settings` declares them.
"""

from __future__ import annotations

import inspect
import json
import sys
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from docs_assistant.config import CONFIG_FILE_ENV, ENV_PREFIX, Settings

#: where the page lives, relative to the repository root
REFERENCE_PAGE = Path("docs/reference/configuration.md")
REGENERATE = "python -m docs_assistant.docs_reference"

SCALARS: dict[Any, str] = {bool: "bool", int: "integer", float: "number", str: "string", Path: "path"}
SCALARS[SecretStr] = "secret string"
BOUNDS = ((annotated_types.Ge, "≥", "ge"), (annotated_types.Gt, ">", "gt"))
BOUNDS += ((annotated_types.Le, "≤", "le"), (annotated_types.Lt, "<", "lt"))


def type_name(annotation: Any) -> str:
    """A reader's name for a field's type: `integer`, `list of string (JSON)`, `one of cpu, cuda`."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal and len(args) == 1:
        return "only " + json.dumps(args[0])
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) if isinstance(a, bool) else str(a) for a in args)
    if origin in (Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        optional = ", optional" if len(kept) < len(args) else ""
        return " or ".join(type_name(a) for a in kept) + optional
    if origin is list:
        return f"list of {type_name(args[0])} (JSON)"
    if origin is dict:
        return f"table of {type_name(args[0])} to {type_name(args[1])} (JSON)"
    if annotation in SCALARS:
        return SCALARS[annotation]
    raise TypeError(f"docs_reference: no reader's name for the type {annotation!r}; add it to SCALARS")


def bounds(field: FieldInfo) -> str:
    """The numeric and length constraints of a field, e.g. `≥ 1, ≤ 100`."""
    found = []
    for meta in field.metadata:
        for kind, sign, attr in BOUNDS:
            if isinstance(meta, kind):
                found.append(f"{sign} {getattr(meta, attr)}")
        unit = "items" if get_origin(field.annotation) is list else "characters"
        if isinstance(meta, annotated_types.MinLen):
            found.append(f"at least {meta.min_length} {unit}")
        if isinstance(meta, annotated_types.MaxLen):
            found.append(f"at most {meta.max_length} {unit}")
    return ", ".join(found)


def default_text(field: FieldInfo) -> str:
    """The default as it would be written in the environment (JSON for lists), or `unset`."""
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool | list):
        text = json.dumps(value)
    elif isinstance(value, Path):
        text = value.as_posix()
    else:
        text = str(value)
    return code(text) if text else '`""`'


def code(text: str) -> str:
    """A Markdown code span that holds any text, backticks included."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def cell(text: str) -> str:
    """Prose for a table cell: `|` would end the cell and `<name>` would be read as an HTML tag."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def section_rows(section: str, model: type[BaseModel]) -> list[str]:
    rows = ["| setting | environment variable | type | default | description |", "| --- | --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        env = f"{ENV_PREFIX}{section.upper()}__{name.upper()}"
        kind = type_name(field.annotation)
        limits = bounds(field)
        kind = f"{kind} ({limits})" if limits else kind
        rows.append(
            f"| `{section}.{name}` | `{env}` | {cell(kind)} | {default_text(field)} | {cell(field.description or '')} |"
        )
    return rows


def config_reference_markdown() -> str:
    """The whole page: a section per settings group, a row per setting."""
    lines = [
        "# Configuration reference",
        "",
        f"<!-- generated from docs_assistant.config.Settings by `{REGENERATE}`: edit the model, not this page -->",
        "",
        "Every setting of `docs_assistant.config.Settings`, generated from the model. Set one as an environment",
        f"variable, in a file of that name in the secrets directory, or in the TOML file named by `{CONFIG_FILE_ENV}`",
        "(a table per section); [configuration](../app/configuration.md) explains the sources and their order.",
        "Lists and tables are JSON in the environment.",
    ]
    for section, field in Settings.model_fields.items():
        model = field.annotation
        if not (inspect.isclass(model) and issubclass(model, BaseModel)):
            raise TypeError(f"docs_reference: Settings.{section} is not a settings section ({model!r})")
        lines += ["", f"## {section}", ""]
        doc = inspect.getdoc(model)
        if doc and doc != inspect.getdoc(BaseModel):
            lines += [cell(" ".join(doc.split())), ""]
        lines += section_rows(section, model)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the page (to REFERENCE_PAGE, or the path given) and say where."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else REFERENCE_PAGE
    if not target.parent.is_dir():
        print(f"docs_reference: {target.parent} does not exist; run from the repository root", file=sys.stderr)
        return 2
    target.write_text(config_reference_markdown(), encoding="utf-8")
    print(f"docs_reference: wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
