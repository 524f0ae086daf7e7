"""Bearer API keys for `/v1/*`; liveness, readiness and metrics stay open for probes and scrapers."""

from __future__ import annotations

import hmac

from pydantic import SecretStr

from docs_assistant.config import ServeSettings
from docs_assistant.errors import ConfigError

KEYS_SETTING = "setting 'serve.api_keys' (env DOCS_ASSISTANT_SERVE__API_KEYS)"
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def check_keys_configured(settings: ServeSettings) -> None:
    """Outside dev a service without keys is a configuration error, raised before it listens."""
    if settings.environment != "dev" and not settings.api_keys:
        raise ConfigError(
            f"API keys are required in environment '{settings.environment}'",
            where=KEYS_SETTING,
            hint='set it to a JSON list of secrets, e.g. \'["…"]\', or use serve.environment "dev"',
        )
    if any(not key.get_secret_value() for key in settings.api_keys):
        raise ConfigError("an API key is empty", where=KEYS_SETTING, hint="remove it or give it a value")


def authorized(header: str | None, keys: list[SecretStr]) -> bool:
    """`Authorization: Bearer <key>` against every key, in constant time per key; no keys: open (dev)."""
    if not keys:
        return True
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    given = token.strip().encode()
    matches = [hmac.compare_digest(given, key.get_secret_value().encode()) for key in keys]
    return any(matches)
