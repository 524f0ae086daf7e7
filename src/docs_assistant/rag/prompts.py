"""Versioned prompt templates from `prompts/`, validated when loaded.

A prompt is identified by (id, version) and carries a content hash that goes into every answer and
report, so a result can always be traced to the exact template text that produced it.
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from pathlib import Path

from docs_assistant.errors import PromptError
from docs_assistant.io import sha256_text

REQUIRED_KEYS = ("id", "version", "template", "parameters")


@dataclass(frozen=True)
class Prompt:
    id: str
    version: str
    template: str
    parameters: tuple[str, ...]
    description: str
    path: str

    @property
    def hash(self) -> str:
        return sha256_text(self.id, self.version, ",".join(self.parameters), self.template)

    @property
    def ref(self) -> dict[str, str]:
        return {"id": self.id, "version": self.version, "hash": self.hash}

    def render(self, **values: str) -> str:
        missing = sorted(set(self.parameters) - values.keys())
        if missing:
            raise PromptError(f"missing values for {missing}", where=f"prompt {self.id} v{self.version} ({self.path})")
        return self.template.format(**{k: values[k] for k in self.parameters})


def _template_fields(template: str, where: str) -> set[str]:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise PromptError(
            f"bad template syntax: {exc}", where=where, hint="write literal braces as {{ and }}"
        ) from None
    bad = sorted(f for f in fields if not f.isidentifier())
    if bad:
        raise PromptError(f"template fields must be plain names, got {bad}", where=where)
    return fields


def load_prompt(path: Path) -> Prompt:
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PromptError(f"not valid TOML: {exc}", where=where) from None
    for key in REQUIRED_KEYS:
        if key not in data:
            raise PromptError(f"missing key '{key}'", where=where)
    params = data["parameters"]
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        raise PromptError("'parameters' must be a list of names", where=where)
    template = str(data["template"])
    used = _template_fields(template, where)
    if used - set(params):
        raise PromptError(f"template uses undeclared variables {sorted(used - set(params))}", where=where)
    if set(params) - used:
        raise PromptError(f"declared parameters not used by the template: {sorted(set(params) - used)}", where=where)
    return Prompt(
        id=str(data["id"]),
        version=str(data["version"]),
        template=template,
        parameters=tuple(params),
        description=str(data.get("description", "")),
        path=where,
    )


class PromptRegistry:
    """Every prompt under a directory, loaded and checked up front."""

    def __init__(self, prompts: list[Prompt]):
        self._prompts: dict[tuple[str, str], Prompt] = {}
        for prompt in prompts:
            key = (prompt.id, prompt.version)
            if key in self._prompts:
                raise PromptError(
                    f"duplicate prompt {prompt.id} v{prompt.version}, also in {self._prompts[key].path}",
                    where=prompt.path,
                )
            self._prompts[key] = prompt

    @classmethod
    def load(cls, directory: Path) -> PromptRegistry:
        files = sorted(directory.glob("*.toml")) if directory.is_dir() else []
        if not files:
            raise PromptError("no prompt files (*.toml) found", where=directory, hint="set paths.prompts_dir")
        return cls([load_prompt(f) for f in files])

    def get(self, prompt_id: str, version: str) -> Prompt:
        prompt = self._prompts.get((prompt_id, str(version)))
        if prompt is None:
            known = ", ".join(f"{i} v{v}" for i, v in sorted(self._prompts))
            raise PromptError(
                f"unknown prompt {prompt_id} v{version}; available: {known}",
                where=(
                    "settings 'prompt.id' / 'prompt.version' "
                    "(env DOCS_ASSISTANT_PROMPT__ID, DOCS_ASSISTANT_PROMPT__VERSION)"
                ),
            )
        return prompt

    def __iter__(self):
        return iter(self._prompts.values())
