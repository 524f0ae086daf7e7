"""Environments as code: one `deploy/environments/<env>.toml` per environment the image is promoted through.

A file says where the service runs (Docker swarm or Kubernetes), at what size, on which port, with which
settings and secret references, whether promotion into it needs a human, where it promotes to next, and
the `[gate]` a deployment must pass there. Everything is checked at load, file by file and then as a set
(ports distinct, `promotes_to` known and acyclic), and every error names the file and the field.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from docs_assistant.errors import ConfigError
from docs_assistant.io import atomic_write_text
from docs_assistant.loadtest.gate import Gate

ENVIRONMENTS_DIR = Path("deploy/environments")
HINT = "see docs/promotion/index.md"

NAME = re.compile(r"[a-z][a-z0-9-]*")
ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SECRET_REF = re.compile(r"[A-Za-z0-9_.-]+")
#: Docker's format (`docker run --memory`): a whole number and a unit; Kubernetes' `Mi`/`Gi` derive from it
MEMORY = re.compile(r"([1-9][0-9]*)([bkmg])")
MEMORY_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
MIN_MEMORY = 6 << 20  # Docker refuses a memory limit below 6 MiB
DOCKER_HOST = re.compile(r"(unix|tcp|ssh|npipe|https?)://\S+")
REMOTE_DOCKER_HOST = re.compile(r"(tcp|ssh|https?)://\S+")
LOOPBACK_ELSEWHERE = (
    "the port would answer only on that host's loopback, where neither you nor the load-test gate can reach it"
)
#: `bind` values that mean every address of the host (published by swarm itself, in host mode)
ALL_ADDRESSES = ("0.0.0.0", "::")  # noqa: S104 -- names the wildcard, binds nothing
#: config keys that name a credential: their value belongs in a secret store, never in a committed file
SECRET_LIKE = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|CREDENTIAL|PRIVATE_KEY", re.IGNORECASE)


class _Table(BaseModel):
    # strict: `replicas = true` or `port = "8101"` is a typo to report, not a value to coerce
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Resources(_Table):
    """Per-replica limits; unset fields leave the engine's default (no limit)."""

    cpus: float | None = Field(default=None, gt=0, description="CPU cores per replica, e.g. 0.5")
    memory: str | None = Field(default=None, description="memory per replica, Docker style: '512m', '2g'")

    @field_validator("memory")
    @classmethod
    def _memory_format(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = MEMORY.fullmatch(value)
        if match is None:
            raise ValueError(f"{value!r} is not a size like '512m' or '2g' (a whole number and b, k, m or g)")
        if int(match[1]) * MEMORY_UNITS[match[2]] < MIN_MEMORY:
            raise ValueError(f"{value!r} is below Docker's minimum of 6m")
        return value

    @property
    def memory_bytes(self) -> int | None:
        """The memory limit in bytes, for targets that want another unit (Kubernetes: Mi, Gi)."""
        if self.memory is None:
            return None
        match = MEMORY.fullmatch(self.memory)
        assert match is not None  # validated
        return int(match[1]) * MEMORY_UNITS[match[2]]


class Environment(_Table):
    """One environment, as its file declares it; `name` is the file's stem."""

    name: str = Field(pattern=NAME.pattern, description="the file stem: lowercase letters, digits, '-'")
    target: Literal["docker", "kubernetes"] = Field(description="Docker Engine in swarm mode, or Kubernetes")
    docker_host: str | None = Field(
        default=None, description="e.g. 'ssh://deploy@host'; unset: $DOCKER_HOST or the local engine"
    )
    replicas: int = Field(default=1, ge=1, le=1000)
    resources: Resources | None = None
    port: int = Field(ge=1, le=65535, description="the published port; distinct across environments")
    bind: str = Field(
        default="0.0.0.0",  # noqa: S104 -- the default of every target before this key existed; dev's file narrows it
        description="the host address the port is published on (docker target): '127.0.0.1' = this machine only",
    )
    config: dict[str, str] = Field(default_factory=dict, description="environment variables of the service")
    secrets: dict[str, str] = Field(
        default_factory=dict, description="environment variable -> the name of a Docker/GitHub secret (never a value)"
    )
    approval: bool = Field(default=False, description="promotion into this environment waits for a human")
    promotes_to: str | None = Field(default=None, pattern=NAME.pattern, description="the next environment, if any")
    gate: Gate

    @field_validator("docker_host")
    @classmethod
    def _docker_host_url(cls, value: str | None) -> str | None:
        if value is not None and not DOCKER_HOST.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a Docker host URL such as 'unix:///var/run/docker.sock' or 'ssh://user@host'"
            )
        return value

    @field_validator("bind")
    @classmethod
    def _bind_address(cls, value: str) -> str:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(
                f'{value!r} is not an IP address: use "127.0.0.1" (this machine only) or "0.0.0.0" (every address)'
            ) from None
        return str(address)

    @property
    def binds_all_addresses(self) -> bool:
        """Whether the port is published on every address of the host (`bind` is 0.0.0.0 or ::)."""
        return self.bind in ALL_ADDRESSES

    @property
    def binds_loopback(self) -> bool:
        """Whether the port answers only on the host's own loopback (127.0.0.0/8 or ::1)."""
        return ipaddress.ip_address(self.bind).is_loopback

    @field_validator("config")
    @classmethod
    def _config_plain(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not ENV_VAR.fullmatch(key):
                raise ValueError(f"{key!r} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
            if SECRET_LIKE.search(key):
                raise ValueError(f"{key!r} names a credential: move it to [secrets] as a reference to a stored secret")
        return value

    @field_validator("secrets")
    @classmethod
    def _secrets_are_references(cls, value: dict[str, str]) -> dict[str, str]:
        for key, ref in value.items():
            if not ENV_VAR.fullmatch(key):
                raise ValueError(f"{key!r} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
            if not SECRET_REF.fullmatch(ref) or len(ref) > 64:
                raise ValueError(
                    f"{key} = {ref!r} is not a secret's name (1-64 of A-Z a-z 0-9 _ . -): "
                    "store the value as a Docker/GitHub secret and put its name here"
                )
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Environment:
        if self.docker_host is not None and self.target != "docker":
            raise ValueError(f"docker_host is set but target is {self.target!r}: it only applies to 'docker'")
        if remote_host(self.docker_host) and self.binds_loopback:
            raise ValueError(
                f"bind = {self.bind!r} with the remote docker_host {self.docker_host!r}: {LOOPBACK_ELSEWHERE}; "
                'set bind = "0.0.0.0" (with an API key in [secrets]) or remove docker_host'
            )
        both = sorted(set(self.config) & set(self.secrets))
        if both:
            raise ValueError(f"{', '.join(both)} set in both [config] and [secrets]: keep one")
        if self.promotes_to == self.name:
            raise ValueError(f"promotes_to names this environment itself ({self.name!r})")
        return self


def remote_host(docker_host: str | None) -> str | None:
    """The host name of an engine on another machine (ssh://, tcp://, http(s)://), None for this machine's.

    tcp://127.0.0.1:2375 and ssh://localhost are this machine: a port bound to loopback there is reachable here."""
    if docker_host is None or not REMOTE_DOCKER_HOST.fullmatch(docker_host):
        return None
    from urllib.parse import urlsplit

    try:
        host = urlsplit(docker_host).hostname
    except ValueError:  # malformed, such as an unclosed "[": connecting fails first, naming the URL
        return None
    if not host or host.rstrip(".") == "localhost":
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a name, not an address
        return host
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
    local = address.is_loopback or address.is_unspecified or (mapped is not None and mapped.is_loopback)
    return None if local else host


def engine_url(env: Environment, environ: Mapping[str, str] = os.environ) -> str | None:
    """The engine an environment deploys to: its file's `docker_host`, else $DOCKER_HOST (None: the local socket)."""
    return env.docker_host or environ.get("DOCKER_HOST") or None


def _dotted(loc: tuple[int | str, ...]) -> str:
    """pydantic's error location as the TOML key a user edits: ('gate', 'p95_ms') -> 'gate.p95_ms'."""
    parts = [str(p) for p in loc if p != "[key]"]
    return ".".join(parts) or "(file)"


def _problems(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        got = err.get("input")
        if not isinstance(got, dict | list) and err["type"] not in {"missing", "value_error"}:
            msg += f"; got {got!r}"
        problems.append(f"{_dotted(err['loc'])}: {msg}")
    return "; ".join(problems)


def _parse(path: Path, text: str) -> Environment:
    """Validate one environment file's text; `path` names it in errors and gives the name (its stem)."""
    name = path.stem
    if not NAME.fullmatch(name):
        raise ConfigError(
            f"name: {name!r} is not a valid environment name (the file stem: a lowercase letter, then a-z 0-9 -)",
            where=path,
            hint="rename the file",
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=path, hint=HINT) from None
    if "name" in data:
        raise ConfigError("name: unknown key (an environment's name is its file's stem)", where=path, hint=HINT)
    try:
        return Environment.model_validate({**data, "name": name})
    except ValidationError as exc:
        raise ConfigError(_problems(exc), where=path, hint=HINT) from None


def _files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.toml"))


def load_environment(name: str, directory: Path = ENVIRONMENTS_DIR) -> Environment:
    """One environment, checked on its own (a deploy to `name` need not read the others)."""
    if not NAME.fullmatch(name):
        raise ConfigError(
            f"{name!r} is not a valid environment name (a lowercase letter, then a-z 0-9 -)", where=f"argument {name!r}"
        )
    path = directory / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(p.stem for p in _files(directory)) or "none"
        raise ConfigError(
            f"no such environment {name!r}; known: {known}",
            where=path,
            hint=f"create it with `docs-assistant env new {name} --from <known environment>`",
        )
    return _parse(path, path.read_text(encoding="utf-8"))


def load_environments(directory: Path = ENVIRONMENTS_DIR) -> dict[str, Environment]:
    """Every environment in `directory`, each valid and together a consistent promotion graph."""
    files = _files(directory)
    if not files:
        raise ConfigError("no environment files (<env>.toml)", where=directory, hint=HINT)
    environments = {path.stem: _parse(path, path.read_text(encoding="utf-8")) for path in files}
    check_environments(environments, directory)
    return environments


def check_environments(environments: Mapping[str, Environment], directory: Path = ENVIRONMENTS_DIR) -> None:
    """What no single file can show: ports in use twice, `promotes_to` naming nothing, promotion cycles."""

    def file(name: str) -> Path:
        return directory / f"{name}.toml"

    ports: dict[int, str] = {}
    for name, env in sorted(environments.items()):
        if env.port in ports:
            other = ports[env.port]
            raise ConfigError(
                f"port: {env.port} is already used by {other!r} ({file(other)})",
                where=file(name),
                hint="give each environment its own port",
            )
        ports[env.port] = name
    for name, env in sorted(environments.items()):
        if env.promotes_to is not None and env.promotes_to not in environments:
            raise ConfigError(
                f"promotes_to: unknown environment {env.promotes_to!r}; known: {', '.join(sorted(environments))}",
                where=file(name),
                hint="name an environment file's stem, or remove promotes_to",
            )
    for name in sorted(environments):
        path = [name]
        nxt = environments[name].promotes_to
        while nxt is not None and nxt not in path:
            path.append(nxt)
            nxt = environments[nxt].promotes_to
        if nxt == name:
            raise ConfigError(
                f"promotes_to: promotion cycle {' -> '.join([*path, name])}",
                where=file(name),
                hint="promotion must end: remove promotes_to from the last environment",
            )


def promotion_chain(environments: Mapping[str, Environment], start: str = "dev") -> list[str]:
    """The environments a release passes through, in order, from `start` to the one that promotes nowhere."""
    if start not in environments:
        raise ConfigError(
            f"no environment {start!r} to start the promotion chain; known: {', '.join(sorted(environments))}",
            where=f"argument {start!r}",
        )
    chain = [start]
    nxt = environments[start].promotes_to
    while nxt is not None:
        if nxt in chain or nxt not in environments:
            raise ConfigError(
                f"promotes_to: {nxt!r} is {'a cycle' if nxt in chain else 'unknown'} after {' -> '.join(chain)}",
                where=f"environment {chain[-1]!r}",
                hint="run load_environments() first: it checks the promotion graph",
            )
        chain.append(nxt)
        nxt = environments[nxt].promotes_to
    return chain


def in_promotion_order(environments: Mapping[str, Environment]) -> list[str]:
    """Names ordered along the promotion chains (those nobody promotes into first), for listings."""
    targets = {env.promotes_to for env in environments.values()}
    ordered: list[str] = []
    for root in sorted(n for n in environments if n not in targets):
        for name in promotion_chain(environments, root):
            if name not in ordered:
                ordered.append(name)
    return ordered + sorted(set(environments) - set(ordered))


_ROOT_KEY = r"^(?P<lead>[ \t]*{key}[ \t]*=[ \t]*)(?P<value>{value})(?P<rest>[ \t]*(#.*)?)$"
_TABLE_HEADER = re.compile(r"^[ \t]*\[", re.MULTILINE)


def _edit_root_key(text: str, key: str, value: str, replace: str) -> tuple[str, str]:
    """Replace the line of a top-level `key = value` (before the first table); returns (text, old line)."""
    header = _TABLE_HEADER.search(text)
    head, tail = (text[: header.start()], text[header.start() :]) if header else (text, "")
    pattern = re.compile(_ROOT_KEY.format(key=re.escape(key), value=value), re.MULTILINE)
    matches = list(pattern.finditer(head))
    if len(matches) != 1:
        return text, ""
    match = matches[0]
    new = replace.format(lead=match["lead"], value=match["value"], rest=match["rest"] or "")
    return head[: match.start()] + new + head[match.end() :] + tail, match[0]


def new_environment(name: str, from_: str, directory: Path = ENVIRONMENTS_DIR) -> Path:
    """Write `<name>.toml` as a copy of `<from_>.toml`: comments kept, a free port, promoting nowhere.

    The text is copied, not re-serialised, so comments and layout survive; only the `port` line changes
    (to one above every port in use) and `promotes_to` becomes a comment, since where a new environment
    sits in the promotion chain is the user's decision. The copy is checked before it is written.
    """
    if not NAME.fullmatch(name):
        raise ConfigError(
            f"{name!r} is not a valid environment name (a lowercase letter, then a-z 0-9 -)", where=f"argument {name!r}"
        )
    target = directory / f"{name}.toml"
    if target.exists():
        raise ConfigError(
            f"environment {name!r} already exists", where=target, hint="pick another name, or edit the file"
        )
    source = load_environment(from_, directory)
    environments = load_environments(directory)
    port = max(env.port for env in environments.values()) + 1
    if port > 65535:
        raise ConfigError(f"port: no free port above {port - 1}", where=target, hint="set ports by hand")
    source_path = directory / f"{from_}.toml"
    original = source_path.read_text(encoding="utf-8")
    text = original
    text, old_port = _edit_root_key(text, "port", r"[0-9_]+", "{lead}" + str(port) + "{rest}")
    if source.promotes_to is not None:
        text, old_promotes = _edit_root_key(
            text,
            "promotes_to",
            r"\"[a-z0-9-]*\"|'[a-z0-9-]*'",
            "# promotes_to = {value}  # as " + from_ + f"; `env new` left {name} promoting nowhere until you choose",
        )
    else:
        old_promotes = "(none)"
    expected = tomllib.loads(original)
    expected.pop("promotes_to", None)
    expected["port"] = port
    if not old_port or not old_promotes or tomllib.loads(text) != expected:
        raise ConfigError(
            "cannot copy this file by editing its text (port or promotes_to not on a line of their own, before "
            "the first table)",
            where=source_path,
            hint=f"copy it to {target} by hand and change port and promotes_to",
        )
    _parse(target, text)
    atomic_write_text(target, text)
    try:
        load_environments(directory)
    except ConfigError:
        target.unlink(missing_ok=True)
        raise
    return target


def as_dict(env: Environment) -> dict[str, Any]:
    """The environment as JSON-ready data (`docs-assistant env show`)."""
    return env.model_dump(mode="json")
