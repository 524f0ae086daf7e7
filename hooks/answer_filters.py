"""Jinja filters for the template's answers (cookiecutter.json `_extensions`): answers are data, never code.

A free-text answer (project name, author, description) lands inside double-quoted strings of Python, TOML,
JSON and YAML files; `quoted` escapes it for all four, so `Say "Hi" Bot` or `Back\\slash Bot` renders into
valid files. Markdown gets the answer as it is.
"""

from __future__ import annotations

from jinja2 import Environment
from jinja2.ext import Extension


def quoted(value: str) -> str:
    """The body of a double-quoted string literal: backslash and double quote escaped (valid in all four)."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


class AnswerFilters(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["quoted"] = quoted
