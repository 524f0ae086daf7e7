"""One error family for everything a user can get wrong.

Every error names *where* the problem is (file, row, field or setting) and *what to do*, so the CLI can
print it as one line and exit non-zero without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class DocsAssistantError(Exception):
    """Base class: a problem the user can fix; the CLI prints it and exits with status 2."""

    exit_code = 2

    def __init__(self, message: str, *, where: str | Path | None = None, hint: str | None = None):
        self.message = message
        self.where = str(where) if where is not None else None
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} ({self.hint})" if self.hint else text


class ConfigError(DocsAssistantError):
    """A setting has a bad value; `where` is the setting's name (and its env var)."""


class DataError(DocsAssistantError):
    """Input data is malformed; `where` is `file[:line]` and the message names the field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ):
        self.file = str(file)
        self.line = line
        self.field = field
        where = f"{file}:{line}" if line is not None else str(file)
        if field:
            message = f"field '{field}': {message}"
        super().__init__(message, where=where, hint=hint)


class StoreError(DocsAssistantError):
    """The LanceDB feature store or vector index cannot be opened or read."""


class PromptError(DocsAssistantError):
    """A prompt template is unknown, malformed or used with missing variables."""


class ModelError(DocsAssistantError):
    """A model cannot be found, loaded or called."""


class InvalidDataError(DataError):
    """Several data errors found in one validation pass; all are reported, nothing is written."""

    def __init__(self, errors: list[DataError]):
        self.errors = errors
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        DocsAssistantError.__init__(self, first.message + more, where=first.where, hint=first.hint)
        self.file, self.line, self.field = first.file, first.line, first.field

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class RegistryError(DocsAssistantError):
    """The model registry (MLflow) cannot be reached, lacks a version or alias, or holds a tampered adapter."""


class EngineError(DocsAssistantError):
    """No Docker Engine answers where DOCKER_HOST (or the local socket) points."""


class ImageError(DocsAssistantError):
    """The container image cannot be staged, built, pushed or pulled; `where` names the setting, file or registry."""


class ReleaseError(DocsAssistantError):
    """A release is refused (dirty tree, failed eval gate, existing tag, nothing to release) or cannot be made."""


class DeployError(DocsAssistantError):
    """A deployment cannot be made: wrong target, missing secret, no engine; `where` names the environment file."""


class DeployFailedError(DeployError):
    """A roll-out that did not come through (rolled back, paused, timed out): a failed gate, exit status 1."""

    exit_code = 1
