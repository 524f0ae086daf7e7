"""`model.adapter_alias` → a fetched, hash-verified adapter directory, for every place that loads the LLM.

Callers (the RAG pipeline, the evals, the service) pass the result to `load_llm`, which only knows
`adapter_path`; so the registry is consulted, and mlflow imported, only when an alias is set.
"""

from __future__ import annotations

from docs_assistant.config import ModelSettings, Settings
from docs_assistant.errors import ConfigError, RegistryError

ALIAS_SETTING = "setting 'model.adapter_alias' (env DOCS_ASSISTANT_MODEL__ADAPTER_ALIAS)"
IMAGE_ALIAS_SETTING = "setting 'image.adapter_alias' (env DOCS_ASSISTANT_IMAGE__ADAPTER_ALIAS)"


def shipped_adapter_alias(settings: Settings) -> tuple[str | None, str]:
    """The registry alias whose adapter a release pins and its image carries, and the setting that chose it.

    `model.adapter_alias` wins (the image serves what the service is configured to load); a set
    `model.adapter_path` means no alias at all; otherwise `image.adapter_alias` (default: the champion).
    """
    model = settings.model
    if model.adapter_alias is not None:
        return model.adapter_alias, ALIAS_SETTING
    if model.adapter_path is not None:
        return None, "setting 'model.adapter_path'"
    return settings.image.adapter_alias, IMAGE_ALIAS_SETTING


def resolve_model_settings(settings: Settings) -> ModelSettings:
    """settings.model, with adapter_path set to the fetched + verified adapter when model.adapter_alias is set.

    The result has `adapter_alias` cleared, so resolving it again changes nothing; its `adapter_path`
    names the version (`.../v<version>-<hash>`), so the evals cache tells versions apart.
    """
    model = settings.model
    alias = model.adapter_alias
    if alias is None:
        return model
    if model.backend != "local":
        raise ConfigError(
            f"an adapter can only be loaded into a local model, but model.backend is {model.backend!r}",
            where=ALIAS_SETTING,
            hint="unset it, or serve the adapter from the OpenAI-compatible server itself",
        )
    if model.adapter_path is not None:
        raise ConfigError(
            f"both model.adapter_alias ({alias!r}) and model.adapter_path ({model.adapter_path}) are set",
            where=ALIAS_SETTING,
            hint="set one: the alias loads a registered, hash-verified adapter; the path loads a directory as is",
        )
    from docs_assistant.registry.model_registry import ModelRegistry

    registry = ModelRegistry(settings)
    info = registry.get(alias)
    if info is None:
        raise registry.unknown(alias, where=ALIAS_SETTING)
    base = info.tags.get("base_model")
    if base is not None and base != model.name:
        raise RegistryError(
            f"{info.name} version {info.version} ({alias!r}) was trained on base model {base!r}, "
            f"but model.name is {model.name!r}",
            where=ALIAS_SETTING,
            hint=f"set model.name to {base!r}, or point {alias!r} at an adapter trained on {model.name!r}",
        )
    return model.model_copy(update={"adapter_path": registry.fetch(info), "adapter_alias": None})
