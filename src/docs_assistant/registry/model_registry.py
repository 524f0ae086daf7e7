"""The model registry: training runs, registered adapter versions, and the aliases that promote them.

A fine-tuning run is logged once (parameters, final and per-step metrics, lineage tags, the adapter and
its plots); registering it makes a numbered version of `registry.model_name` whose tags repeat the
lineage and carry the adapter's content hash. Aliases (`candidate`, `champion`) name versions; promotion
moves an alias. Whoever loads a version (the service, the image build) fetches it through
`fetch_adapter`, which re-hashes the downloaded files, so a tampered or swapped artifact is refused.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from docs_assistant.config import Settings
from docs_assistant.errors import RegistryError
from docs_assistant.registry.backend import URI_SETTING, Backend, backend_of, client, error_code, mlflow_key
from docs_assistant.registry.hashing import adapter_hash

CANDIDATE = "candidate"
CHAMPION = "champion"
ADAPTER_ARTIFACT = "adapter"
HASH_TAG = "adapter_hash"
_BATCH = 100  # MLflow takes at most 100 params or tags, 1000 metrics, per log_batch request
_RESERVED_ALIAS = re.compile(r"^v\d+$")  # MLflow reserves 'v<number>' for versions


@dataclass(frozen=True)
class TrainingRun:
    """Everything one fine-tuning run produced, as the registry logs it."""

    adapter_dir: Path
    params: dict[str, Any]
    metrics: dict[str, float]
    history: list[dict[str, float]]
    lineage: dict[str, str]
    artifacts: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered adapter version, self-describing: its tags repeat the run's lineage."""

    name: str
    version: int
    run_id: str
    adapter_hash: str
    aliases: tuple[str, ...]
    source: str
    tags: dict[str, str]
    metrics: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "adapter_hash": self.adapter_hash,
            "aliases": list(self.aliases),
            "source": self.source,
            "tags": dict(sorted(self.tags.items())),
            "metrics": dict(sorted(self.metrics.items())),
        }


class ModelRegistry:
    """MLflow behind the few operations the pipeline needs; the experiment and model appear on first write."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.backend: Backend = backend_of(settings)
        self.name = settings.registry.model_name
        self._client: Any = None

    # -- connection ------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            with self._errors("open the registry"):
                self._client = client(self.backend)
        return self._client

    @property
    def _empty(self) -> bool:
        """True when the embedded database was never created: reads answer 'nothing' without creating it."""
        return self.backend.database is not None and not self.backend.database.is_file()

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """MLflow and database failures become one RegistryError naming the tracking URI setting."""
        try:
            yield
        except RegistryError:
            raise
        except Exception as exc:
            if type(exc).__module__.split(".")[0] not in {"mlflow", "sqlalchemy", "requests", "urllib3"} and not (
                isinstance(exc, OSError)
            ):
                raise
            raise RegistryError(
                f"cannot {action} at {self.backend.tracking_uri}: {type(exc).__name__}: {exc}",
                where=URI_SETTING,
                hint="check that the tracking server is running and the URI is right, "
                "or unset it to use the embedded registry under paths.state_dir",
            ) from exc

    def _experiment_id(self) -> str:
        name = self.settings.registry.experiment
        with self._errors(f"open experiment {name!r}"):
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                return str(found.experiment_id)
            try:
                return str(self.client.create_experiment(name, artifact_location=self.backend.artifact_location))
            except Exception as exc:  # another process created it first
                if error_code(exc) != "RESOURCE_ALREADY_EXISTS":
                    raise
                return str(self.client.get_experiment_by_name(name).experiment_id)

    def _ensure_model(self) -> None:
        with self._errors(f"create registered model {self.name!r}"):
            try:
                self.client.get_registered_model(self.name)
            except Exception as exc:
                if error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
                    raise
                try:
                    self.client.create_registered_model(
                        self.name, description="LoRA adapters fine-tuned by docs-assistant finetune"
                    )
                except Exception as again:  # another process created it first
                    if error_code(again) != "RESOURCE_ALREADY_EXISTS":
                        raise

    # -- writing ---------------------------------------------------------------------------------
    def log_run(self, run: TrainingRun) -> str:
        """Log one training run; returns its MLflow run id. The adapter goes under artifact path 'adapter'."""
        from mlflow.entities import Metric, Param

        digest = adapter_hash(run.adapter_dir)
        for path in run.artifacts:
            if not Path(path).is_file():
                raise RegistryError("artifact to log is not a file", where=path, hint="write it before log_run")
        tags = {mlflow_key(k): str(v) for k, v in run.lineage.items()} | {HASH_TAG: digest}
        if "git_sha" in run.lineage:
            tags["mlflow.source.git.commit"] = run.lineage["git_sha"]
        now = int(time.time() * 1000)
        metrics = [
            Metric(mlflow_key(k), float(v), now, int(point.get("step", i)))
            for i, point in enumerate(run.history)
            for k, v in point.items()
            if k != "step" and v is not None
        ]
        # final values at the last step and a later time, so they are the run's "latest" even where a
        # history series shares the name (tokens_per_s)
        last_step = max((m.step for m in metrics), default=0)
        metrics += [Metric(mlflow_key(k), float(v), now + 1, last_step) for k, v in run.metrics.items()]
        params = [Param(mlflow_key(k), _param_value(v)) for k, v in run.params.items()]
        experiment_id = self._experiment_id()
        with self._errors("log the training run"):
            run_id = str(self.client.create_run(experiment_id, tags=tags).info.run_id)
            try:
                for chunk in _chunks(params, _BATCH):
                    self.client.log_batch(run_id, params=chunk)
                for chunk in _chunks(metrics, 10 * _BATCH):
                    self.client.log_batch(run_id, metrics=chunk)
                self.client.log_artifacts(run_id, str(run.adapter_dir), artifact_path=ADAPTER_ARTIFACT)
                for path in run.artifacts:
                    self.client.log_artifact(run_id, str(path))
            except BaseException:
                self.client.set_terminated(run_id, status="FAILED")
                raise
            self.client.set_terminated(run_id, status="FINISHED")
        return run_id

    def register(self, run_id: str, adapter_hash: str, *, alias: str | None = CANDIDATE) -> ModelVersionInfo:
        """A new version from a logged run's adapter; `alias` (default 'candidate') moves to it."""
        with self._errors(f"read run {run_id}"):
            try:
                run = self.client.get_run(run_id)
            except Exception as exc:
                if error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
                    raise
                raise RegistryError(
                    f"no run {run_id!r} in the registry", where=URI_SETTING, hint="pass the id log_run returned"
                ) from None
        logged = run.data.tags.get(HASH_TAG)
        if logged is not None and logged != adapter_hash:
            raise RegistryError(
                f"run {run_id} logged an adapter with hash {logged}, but {adapter_hash} was given to register",
                where="argument 'adapter_hash'",
                hint="register the hash of the adapter directory that was logged (adapter_hash(dir))",
            )
        if alias is not None:
            _check_alias(alias)
        lineage = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        self._ensure_model()
        with self._errors(f"register a version of {self.name!r}"):
            created = self.client.create_model_version(
                self.name,
                source=f"runs:/{run_id}/{ADAPTER_ARTIFACT}",
                run_id=run_id,
                tags=lineage | {HASH_TAG: adapter_hash},
            )
            if alias is not None:
                self.client.set_registered_model_alias(self.name, alias, str(created.version))
        info = self.get(int(created.version))
        assert info is not None, "a version just created must be readable"
        return info

    def set_alias(self, alias: str, version: int) -> None:
        """Point `alias` at `version` (promotion); whichever version held it loses it."""
        _check_alias(alias)
        if self.get(int(version)) is None:
            raise RegistryError(
                f"registered model {self.name!r} has no version {version}",
                where="argument 'version'",
                hint="see `docs-assistant registry list` for the versions there are",
            )
        with self._errors(f"set alias {alias!r}"):
            self.client.set_registered_model_alias(self.name, alias, str(int(version)))

    # -- reading ---------------------------------------------------------------------------------
    def get(self, ref: str | int) -> ModelVersionInfo | None:
        """A version by number (3, '3', 'v3') or by alias; None when there is no such version or alias."""
        if self._empty:
            return None
        version = _version_number(ref)
        with self._errors(f"read {self.name!r} {ref!r}"):
            if version is None:
                try:
                    model = self.client.get_registered_model(self.name)
                except Exception as exc:
                    if error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
                        raise
                    return None
                target = (model.aliases or {}).get(str(ref))
                if target is None:
                    return None
                version = int(target)
            try:
                found = self.client.get_model_version(self.name, str(version))
            except Exception as exc:
                if error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
                    raise
                return None
            return self._info(found)

    def versions(self) -> list[ModelVersionInfo]:
        """Every version of the registered model, oldest first."""
        if self._empty:
            return []
        found: list[Any] = []
        quoted = self.name.replace("'", "\\'")
        with self._errors(f"list versions of {self.name!r}"):
            try:
                aliases = dict(self.client.get_registered_model(self.name).aliases or {})
            except Exception as exc:
                if error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
                    raise
                return []
            token = None
            while True:
                page = self.client.search_model_versions(f"name = '{quoted}'", page_token=token)
                found += list(page)
                token = page.token
                if not token:
                    break
            # search results carry no aliases (SQLite store): take them from the registered model
            infos = (self._info(v, [a for a, n in aliases.items() if str(n) == str(v.version)]) for v in found)
            return sorted(infos, key=lambda v: v.version)

    def _info(self, version: Any, aliases: list[str] | None = None) -> ModelVersionInfo:
        try:
            metrics = dict(self.client.get_run(version.run_id).data.metrics) if version.run_id else {}
        except Exception as exc:  # the run was deleted; the version still describes itself by its tags
            if error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
                raise
            metrics = {}
        tags = dict(version.tags or {})
        return ModelVersionInfo(
            name=version.name,
            version=int(version.version),
            run_id=version.run_id or "",
            adapter_hash=tags.get(HASH_TAG, ""),
            aliases=tuple(sorted(version.aliases or () if aliases is None else aliases)),
            source=version.source,
            tags=tags,
            metrics={k: float(v) for k, v in metrics.items()},
        )

    # -- fetching --------------------------------------------------------------------------------
    def fetch_adapter(self, ref: str | int, dest: Path | None = None) -> Path:
        """Download a version's adapter and verify its hash; returns the directory it is in.

        Without `dest` it goes to `<paths.models_dir>/adapters/<model>/v<version>-<hash>`, and a copy
        already there is reused once it re-hashes right. A given `dest` must be absent or empty.
        """
        return self.fetch(self.require(ref), dest)

    def require(self, ref: str | int, *, where: str | None = None) -> ModelVersionInfo:
        """The version `ref` names (a number or an alias), or the error saying it does not exist and what does."""
        info = self.get(ref)
        if info is None:
            raise self.unknown(ref, where=where or f"argument {ref!r}")
        return info

    def unknown(self, ref: str | int, *, where: str) -> RegistryError:
        """The error for a version or alias that does not exist, saying what there is instead."""
        if _version_number(ref) is not None:
            what, alias = f"registered model {self.name!r} has no version {ref}", CHAMPION
        else:
            what, alias = f"alias {str(ref)!r} is not set on registered model {self.name!r}", str(ref)
        return RegistryError(
            f"{what} (registry at {self.backend.tracking_uri})",
            where=where,
            hint=f"see `docs-assistant registry list`; `docs-assistant registry promote <version> --alias {alias}` "
            "points an alias at a version",
        )

    def fetch(self, info: ModelVersionInfo, dest: Path | None = None) -> Path:
        """`fetch_adapter` for a version already looked up (so an alias moving meanwhile changes nothing)."""
        if not info.adapter_hash:
            raise RegistryError(
                f"{info.name} version {info.version} has no {HASH_TAG} tag, so its adapter cannot be verified",
                where=URI_SETTING,
                hint="register adapters through docs-assistant (ModelRegistry.register), which records the hash",
            )
        cached = dest is None
        if dest is None:
            dest = self.settings.paths.models_dir / "adapters" / self.name / f"v{info.version}-{info.adapter_hash[:12]}"
            if _hash_or_none(dest) == info.adapter_hash:
                return dest
        elif dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise RegistryError(
                "destination exists and is not an empty directory", where=dest, hint="choose a new directory"
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
        try:
            local = self._download(info, staging)
            actual = _hash_or_none(local)
            if actual != info.adapter_hash:
                raise RegistryError(
                    f"{info.name} version {info.version}: the stored adapter does not match its registered hash "
                    f"(registered {info.adapter_hash}, downloaded {actual or 'not a complete adapter'})",
                    where=info.source,
                    hint="the artifact changed after registration; do not load it: re-register the training "
                    "run's adapter, or promote another version (`docs-assistant registry promote <version>`)",
                )
            if cached and dest.exists():
                shutil.rmtree(dest)  # a stale or damaged copy of ours
            elif dest.exists():
                dest.rmdir()  # empty, checked above
            try:
                local.rename(dest)
            except OSError:  # another process (a second replica) put its verified copy there first
                if not cached or _hash_or_none(dest) != info.adapter_hash:
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return dest

    def _download(self, info: ModelVersionInfo, into: Path) -> Path:
        moved = self._embedded_artifact(info)
        if moved is not None:
            return Path(shutil.copytree(moved, into / moved.name))
        import mlflow.artifacts

        with self._errors(f"download {info.source}"):
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=info.source,
                dst_path=str(into),
                tracking_uri=self.backend.tracking_uri,
                registry_uri=self.backend.tracking_uri,
            )
        return Path(local)

    def _embedded_artifact(self, info: ModelVersionInfo) -> Path | None:
        """A version's files under the embedded registry's artifact root as it is now, if they are there.

        MLflow records a run's artifacts by absolute path; an embedded registry that moved with its state
        directory (cd.yml hands `var/` from the release job to the image job) still finds its own files.
        """
        location = self.backend.artifact_location
        if not self.backend.embedded or location is None or not info.source.startswith("runs:/"):
            return None
        run_id, _, artifact_path = info.source.removeprefix("runs:/").partition("/")
        local = Path(url2pathname(urlparse(location).path)) / run_id / "artifacts" / artifact_path
        return local if local.is_dir() else None


def _check_alias(alias: str) -> None:
    if not alias or _RESERVED_ALIAS.match(alias) or mlflow_key(alias) != alias:
        raise RegistryError(
            f"invalid alias {alias!r}",
            where="argument 'alias'",
            hint=f"use a name such as {CANDIDATE!r} or {CHAMPION!r} (letters, digits, '_', '-', '.'; "
            "not 'v<number>', which MLflow keeps for versions)",
        )


def _version_number(ref: str | int) -> int | None:
    if isinstance(ref, int):
        return ref
    text = ref.strip()
    if text.isdigit():
        return int(text)
    if _RESERVED_ALIAS.match(text):
        return int(text[1:])
    return None


def _hash_or_none(directory: Path) -> str | None:
    try:
        return adapter_hash(directory) if directory.is_dir() else None
    except RegistryError:
        return None


def _param_value(value: Any) -> str:
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
