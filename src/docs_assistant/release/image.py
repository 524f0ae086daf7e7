"""The container image: staged, built once with the Docker SDK, pushed, and from then on named by digest.

Staging resolves everything the image carries on the host first (the base model, the registry's adapter
verified by hash, the vector index, the prompts) into a clean build context, so a bad adapter fails before
Docker runs and the Dockerfile re-checks the same bytes with `sha256sum`. Registry credentials come from
settings fed by the environment (`DOCS_ASSISTANT_IMAGE__USERNAME/PASSWORD`) and go only to the push and
pull calls: never into build arguments, which `docker history` shows to anyone holding the image.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docs_assistant.config import TINY_MODEL, Settings
from docs_assistant.data.store import CHUNKS, record_hint
from docs_assistant.engine import docker_client
from docs_assistant.errors import ImageError
from docs_assistant.io import sha256_file
from docs_assistant.lineage import git_sha

Progress = Callable[[str], None]

#: label keys: the OCI ones, and ours for what a deployment needs to know without pulling the image
LABEL_PREFIX = "io.docs-assistant"
#: files of the repository the build needs (everything else stays out of the context)
CONTEXT_FILES = ("pyproject.toml", "uv.lock", "README.md")
CONTEXT_DIRS = ("src",)
DEPLOY_FILES = ("deploy/cuda_packages.py",)  # the Dockerfile comes from image.dockerfile
#: the deps layer's pyproject.toml: the project's own, its version line made constant (`deps_pyproject`)
DEPS_PYPROJECT = "deps/pyproject.toml"
#: where `image.torch_wheels` is served during a build; fixed, because a build arg that changes busts the cache
WHEELS_PORT = 38217
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".DS_Store")


@dataclass(frozen=True)
class BuildPlan:
    """A staged build context and what the build is told about it."""

    context: Path
    buildargs: dict[str, str]
    labels: dict[str, str]
    model: dict[str, Any]


@dataclass
class BuiltImage:
    """What one build (and optionally its push) produced."""

    image_id: str
    tags: list[str]
    labels: dict[str, str]
    size: int
    repository: str | None = None
    digest: str | None = None
    log: list[str] = field(default_factory=list)

    @property
    def reference(self) -> str | None:
        """`registry/repo@sha256:...`: the one name deployments use."""
        return f"{self.repository}@{self.digest}" if self.repository and self.digest else None

    def as_manifest(self) -> dict[str, Any]:
        return {
            "id": self.image_id,
            "repository": self.repository,
            "digest": self.digest,
            "reference": self.reference,
            "tags": self.tags,
            "size_bytes": self.size,
            "labels": self.labels,
        }


def _copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, ignore=IGNORED, dirs_exist_ok=True)


def _stage_base_model(settings: Settings, dest: Path) -> tuple[str, dict[str, Any]]:
    """Copy the base model into `dest`; returns (model.name inside the image, facts for labels/manifest)."""
    from docs_assistant.rag.llm import resolve_model_path

    model = settings.model
    path, revision = resolve_model_path(model, settings.paths.models_dir)
    local = Path(path)
    if not local.is_dir():  # a hub id: take the snapshot the local cache already holds
        try:
            from huggingface_hub import snapshot_download

            local = Path(snapshot_download(model.name, revision=model.revision, local_files_only=True))
        except Exception as err:
            raise ImageError(
                f"model {model.name!r} is not in the local Hugging Face cache, so it cannot go into the image",
                where="model.name",
                hint="download it once (huggingface-cli download), or set model.name to a local directory",
            ) from err
    if model.name == TINY_MODEL:  # the image's models_dir holds it under the same name, so it is found as usual
        target, name_in_image = dest / local.name, TINY_MODEL
    else:
        target, name_in_image = dest / "base", "/app/model/base"
    _copy_tree(local, target)
    return name_in_image, {"name": model.name, "revision": revision or model.revision}


def _stage_adapter(settings: Settings, dest: Path, release: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Copy the adapter into `dest`: the one `release` (a manifest) pins, else the configured alias's or path's.

    With a manifest, exactly its pinned version is fetched and must hash to the pinned value, wherever the
    alias points now: the image is the release's, and building it trains or re-resolves nothing.
    """
    from docs_assistant.registry.hashing import adapter_hash
    from docs_assistant.registry.resolve import shipped_adapter_alias

    if release is not None:
        pinned = release.get("adapter")
        if not pinned:
            return None
        source, facts = _pinned_adapter(settings, pinned)
    else:
        alias, setting = shipped_adapter_alias(settings)
        if alias is None and settings.model.adapter_path is None:
            return None
        facts = {"alias": alias, "version": None}
        if alias is not None:
            from docs_assistant.registry.model_registry import ModelRegistry

            registry = ModelRegistry(settings)
            info = registry.get(alias)
            if info is None:
                raise registry.unknown(alias, where=setting)
            source = registry.fetch(info)  # raises RegistryError when the stored bytes do not match the registered hash
            facts |= {"version": info.version, "registered_sha256": info.adapter_hash}
        else:
            source = Path(settings.model.adapter_path)  # type: ignore[arg-type]
    digest = adapter_hash(source)
    if facts.get("registered_sha256") not in (None, digest):
        raise ImageError(
            f"adapter changed after its verified fetch (registered {facts['registered_sha256']}, found {digest})",
            where=source,
            hint="fetch it again: `docs-assistant registry fetch`",
        )
    _copy_tree(source, dest)
    return facts | {"sha256": digest}


def _pinned_adapter(settings: Settings, pinned: Mapping[str, Any]) -> tuple[Path, dict[str, Any]]:
    """The release manifest's adapter (by registry version, else by path), with the hash it must have."""
    where = "release manifest 'adapter'"
    facts = {"alias": pinned.get("alias"), "version": pinned.get("version"), "registered_sha256": pinned["hash"]}
    if pinned.get("version") is None:
        return Path(pinned["path"]), facts
    from docs_assistant.registry.model_registry import ModelRegistry

    registry = ModelRegistry(settings)
    info = registry.get(int(pinned["version"]))
    if info is None:
        raise ImageError(
            f"the release pins {pinned.get('registry')} version {pinned['version']}, "
            f"which the registry at {registry.backend.tracking_uri} does not hold",
            where=where,
            hint="build where the release's registry is (cd.yml hands it from the release job to the image job), "
            "or release again from this registry",
        )
    if info.adapter_hash != pinned["hash"]:
        raise ImageError(
            f"{info.name} version {info.version} is registered with hash {info.adapter_hash}, "
            f"but the release pinned {pinned['hash']}",
            where=where,
            hint="this is not the registry the release was made from: build against that one, or release again",
        )
    return registry.fetch(info), facts  # fetch re-hashes the stored bytes against the registered hash


def _check_pinned_index(store: Path, release: Mapping[str, Any]) -> None:
    """The index the image would carry must be the version the release pinned: nothing re-indexed since."""
    from docs_assistant.lineage import table_versions

    pinned = ((release.get("data") or {}).get("table_versions") or {}).get(CHUNKS)
    current = (table_versions(store) or {}).get(CHUNKS)
    if pinned is not None and current != pinned:
        raise ImageError(
            f"the vector index is at version {current}, but the release pinned version {pinned}",
            where=store,
            hint="build from the state the release recorded (cd.yml hands it over as the release's state artifact), "
            "or release again to pin the index as it is now",
        )


def _world_readable(root: Path) -> None:
    """COPY keeps file modes, and the image runs as a non-root user: a 0700 model directory
    (what tempfile.mkdtemp makes) would be unreadable in the container."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _checksums(root: Path) -> str:
    lines = [f"{sha256_file(p)}  {p.relative_to(root).as_posix()}" for p in sorted(root.rglob("*")) if p.is_file()]
    return "\n".join(lines) + "\n"


def _runtime_config(name_in_image: str, has_adapter: bool) -> str:
    """The image's settings file: where the bundle lives inside it. Deploy-time env vars still override it."""
    from docs_assistant.serve.feedback_log import IMAGE_DIR

    lines = ["[paths]", 'state_dir = "/app/var"', 'model_cache_dir = "/app/model"', 'prompts_dir = "/app/prompts"']
    lines.append(f"feedback_dir = {json.dumps(IMAGE_DIR)}")  # the store is read-only there (serve/feedback_log.py)
    lines += ["", "[model]", f"name = {json.dumps(name_in_image)}"]
    if has_adapter:
        lines.append('adapter_path = "/app/model/adapter"')
    return "\n".join(lines) + "\n"


def deps_pyproject(text: str) -> str:
    """pyproject.toml as the deps layer sees it: the same, but for the project's version, which is constant.

    The layer installs third-party packages only (`--no-install-project`), yet the classic builder keys it on
    the bytes it copies: with the real version, every release (a version bump) would reinstall them all.
    """
    project = re.search(r"(?ms)^\[project\]\n.*?(?=^\[)", text + "\n[")
    if project is None:
        return text
    body = re.sub(r'(?m)^version\s*=\s*"[^"]*"', 'version = "0"', project.group(0), count=1)
    return text[: project.start()] + body + text[project.end() :]


def stage_context(
    settings: Settings,
    dest: Path,
    *,
    root: Path,
    version: str,
    release: Mapping[str, Any] | None = None,
    progress: Progress = print,
) -> BuildPlan:
    """Fill `dest` (created, must not exist) with the build context and decide build args and labels.

    `release`, the release manifest of this commit, pins the adapter; without one the configured alias decides.
    """
    from docs_assistant.rag.prompts import PromptRegistry

    image = settings.image
    dockerfile = root / image.dockerfile
    if not dockerfile.is_file():
        raise ImageError("Dockerfile not found", where=f"image.dockerfile={image.dockerfile}")
    store = settings.paths.store_uri
    if not (store / f"{CHUNKS}.lance").is_dir():
        raise ImageError(
            "there is no vector index to put into the image",
            where=store,
            hint=record_hint(CHUNKS),
        )
    if release is not None:
        _check_pinned_index(store, release)
    dest.mkdir(parents=True)
    for name in CONTEXT_FILES:
        shutil.copy2(root / name, dest / name)
    (dest / DEPS_PYPROJECT).parent.mkdir()
    (dest / DEPS_PYPROJECT).write_text(deps_pyproject((root / "pyproject.toml").read_text(encoding="utf-8")))
    for name in CONTEXT_DIRS:
        _copy_tree(root / name, dest / name)
    _copy_tree(settings.paths.prompts_dir, dest / "prompts")
    (dest / "deploy").mkdir()
    for name in DEPLOY_FILES:
        shutil.copy2(root / name, dest / name)
    shutil.copy2(dockerfile, dest / "deploy" / "Dockerfile")
    progress("image: staging the model, adapter and index")
    bundle = dest / "bundle"
    model_dir = bundle / "model"
    model_dir.mkdir(parents=True)
    name_in_image, base = _stage_base_model(settings, model_dir)
    adapter = _stage_adapter(settings, model_dir / "adapter", release)
    if release is not None:
        pinned = f"the adapter the release pins, sha256 {adapter['sha256'][:12]}" if adapter else "no adapter"
        progress(f"image: {pinned} (release manifest)")
    (bundle / "MODEL.SHA256SUMS").write_text(_checksums(model_dir), encoding="utf-8")
    _copy_tree(store, bundle / "var" / "lancedb")
    (bundle / "docs-assistant.toml").write_text(_runtime_config(name_in_image, adapter is not None), encoding="utf-8")

    _world_readable(dest)

    prompts = PromptRegistry.load(settings.paths.prompts_dir)
    labels = {
        "org.opencontainers.image.title": "docs-assistant",
        "org.opencontainers.image.source": _source_url(root),
        "org.opencontainers.image.revision": git_sha(root),
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        f"{LABEL_PREFIX}.model": base["name"],
        f"{LABEL_PREFIX}.model.revision": base["revision"] or "",
        f"{LABEL_PREFIX}.adapter.version": str(adapter["version"]) if adapter and adapter["version"] else "",
        f"{LABEL_PREFIX}.adapter.sha256": adapter["sha256"] if adapter else "",
        f"{LABEL_PREFIX}.prompts": ",".join(f"{p.id}@{p.version}:{p.hash[:12]}" for p in prompts),
        f"{LABEL_PREFIX}.torch": image.torch_flavour,
    }
    buildargs = {"BASE_IMAGE": image.base_image, "TORCH_FLAVOUR": image.torch_flavour, "TORCH_INDEX": image.torch_index}
    if image.torch_wheels is not None:
        buildargs["TORCH_FIND_LINKS"] = f"http://127.0.0.1:{WHEELS_PORT}/"
    return BuildPlan(context=dest, buildargs=buildargs, labels=labels, model={"base": base, "adapter": adapter})


def _source_url(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "remote", "get-url", "origin"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    if out.startswith("git@github.com:"):
        out = "https://github.com/" + out.removeprefix("git@github.com:")
    return out.removesuffix(".git")


#: terminal escape sequences (colours, cursor moves, titles) and the other control characters a step prints
CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.|[\x00-\x08\x0b-\x1f\x7f]")
#: (what a failed build's output says, the setting that decides it): the first match becomes the error's hint
BUILD_HINTS = (
    (
        ("torch",),
        "torch comes from DOCS_ASSISTANT_IMAGE__TORCH_INDEX, or offline from DOCS_ASSISTANT_IMAGE__TORCH_WHEELS "
        "(a folder with one CPU torch wheel)",
    ),
    (
        ("resolve", "name resolution", "network is unreachable", "connection refused", "connect error", "timed out"),
        "where containers reach the network only through the host, set DOCS_ASSISTANT_IMAGE__NETWORK_MODE=host",
    ),
    (
        ("pull access denied", "manifest unknown", "repository does not exist", "no such image"),
        "DOCS_ASSISTANT_IMAGE__BASE_IMAGE names the base image: one this engine has or can pull",
    ),
)


def readable(lines: list[str], last: int = 12) -> str:
    """A build step's last lines as plain text: control codes out, carriage-return redraws collapsed."""
    text = "".join(lines).replace("\r\n", "\n")
    plain = [CONTROL.sub("", line.rsplit("\r", 1)[-1]).rstrip() for line in text.split("\n")]
    return "\n".join([line for line in plain if line.strip()][-last:])


def build_hint(output: str) -> str | None:
    """The setting to look at for a failed build's output, if it says which."""
    lowered = output.lower()
    return next((hint for needles, hint in BUILD_HINTS if any(n in lowered for n in needles)), None)


def _stream(events: Iterator[dict[str, Any]], progress: Progress, log: list[str], what: str, where: str) -> dict:
    """Relay a Docker progress stream; the first error event becomes an ImageError. Returns the last `aux`.

    The error carries the failing step's last lines as plain text (a raw build log is ANSI colour and
    progress-bar redraws) and, when they show which, the setting involved.
    """
    aux: dict[str, Any] = {}
    for event in events:
        if "error" in event or "errorDetail" in event:
            detail = CONTROL.sub("", str(event.get("errorDetail", {}).get("message") or event.get("error")))
            tail = readable(log)
            message = f"{what} failed: {detail}" + (f"\n{tail}" if tail else "")
            raise ImageError(message, where=where, hint=build_hint(f"{detail}\n{tail}"))
        if "stream" in event:
            text = event["stream"]
            log.append(text)
            if text.strip():
                progress(text.rstrip())
        elif "status" in event:
            line = " ".join(str(event[k]) for k in ("id", "status") if event.get(k))
            if "progress" not in event:
                progress(line)
        if "aux" in event:
            aux = event["aux"]
    return aux


def image_tags(settings: Settings, version: str, sha: str) -> list[str]:
    """`repo:<version>` and `repo:sha-<12 chars>`, under the registry when one is set."""
    repository = repository_name(settings)
    return [f"{repository}:{version.replace('+', '-')}", f"{repository}:sha-{sha.removesuffix('-dirty')[:12]}"]


def repository_name(settings: Settings) -> str:
    image = settings.image
    return f"{image.registry.rstrip('/')}/{image.repository}" if image.registry else image.repository


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """The build's own log says what it fetched."""


@contextlib.contextmanager
def serving_torch_wheel(settings: Settings) -> Iterator[None]:
    """Serve the one CPU torch wheel of `image.torch_wheels` on loopback while the build runs (host network)."""
    image = settings.image
    if image.torch_wheels is None:
        yield
        return
    if image.network_mode != "host":
        raise ImageError(
            "a local torch wheel reaches the build over loopback, so the build needs the host network",
            where="image.torch_wheels",
            hint="set image.network_mode = 'host', or unset image.torch_wheels to use image.torch_index",
        )
    found = sorted(Path(image.torch_wheels).glob("torch-*+cpu-*.whl"))
    if len(found) != 1:
        raise ImageError(
            f"expected exactly one CPU torch wheel (torch-*+cpu-*.whl), found {[p.name for p in found]}",
            where=f"image.torch_wheels={image.torch_wheels}",
            hint="keep one CPU torch wheel there, or unset it to use image.torch_index",
        )
    import fcntl  # POSIX: local torch wheels are a Linux build machine's concern

    # One build at a time serves on the fixed port; a concurrent one waits for it instead of failing.
    lock = Path(tempfile.gettempdir()) / f"docs-assistant-wheels-{WHEELS_PORT}.lock"
    with lock.open("a") as held, tempfile.TemporaryDirectory(prefix="docs-assistant-wheels-") as tmp:
        fcntl.flock(held, fcntl.LOCK_EX)
        os.symlink(found[0].resolve(), Path(tmp) / found[0].name)
        handler = functools.partial(_QuietHandler, directory=tmp)
        try:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", WHEELS_PORT), handler)
        except OSError as err:
            raise ImageError(
                f"cannot serve the torch wheel on 127.0.0.1:{WHEELS_PORT}: {err}", where="image.torch_wheels"
            ) from err
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield
        finally:
            server.shutdown()
            server.server_close()


def build(
    settings: Settings, plan: BuildPlan, tags: list[str], progress: Progress = print, *, nocache: bool = False
) -> BuiltImage:
    """Build the staged context with the classic builder, streaming its output; tag it with every tag.

    `nocache` builds every step afresh, ignoring the layer cache (a cold build, as on a new machine).
    """
    client = docker_client()
    log: list[str] = []
    with serving_torch_wheel(settings):
        image_id = _build(client, settings, plan, tags, progress, log, nocache=nocache)
    image = client.images.get(image_id)
    for tag in tags[1:]:
        repo, _, name = tag.rpartition(":")
        image.tag(repo, name)
    return BuiltImage(image_id=image_id, tags=tags, labels=image.labels, size=image.attrs["Size"], log=log)


def _build(
    client: Any,
    settings: Settings,
    plan: BuildPlan,
    tags: list[str],
    progress: Progress,
    log: list[str],
    *,
    nocache: bool = False,
) -> str:
    events = client.api.build(
        path=str(plan.context),
        dockerfile="deploy/Dockerfile",
        tag=tags[0],
        buildargs=plan.buildargs,
        labels=plan.labels,
        network_mode=settings.image.network_mode,
        rm=True,
        forcerm=True,
        pull=False,
        nocache=nocache,
        decode=True,
    )
    aux = _stream(events, progress, log, "docker build", where=f"{plan.context}/deploy/Dockerfile")
    image_id = aux.get("ID")
    if not image_id:
        raise ImageError("docker build ended without an image id", where=f"{plan.context}/deploy/Dockerfile")
    return str(image_id)


def _auth(settings: Settings) -> dict[str, str] | None:
    image = settings.image
    if image.username is None and image.password is None:
        return None
    if image.username is None or image.password is None:
        raise ImageError(
            "registry credentials are half set",
            where="DOCS_ASSISTANT_IMAGE__USERNAME / DOCS_ASSISTANT_IMAGE__PASSWORD",
            hint="set both, or neither for a registry without authentication",
        )
    return {"username": image.username, "password": image.password.get_secret_value()}


def push(settings: Settings, built: BuiltImage, progress: Progress = print) -> BuiltImage:
    """Push every tag; the registry's digest of the manifest is the image's name from now on."""
    from docker.errors import APIError

    registry = settings.image.registry
    if not registry:
        raise ImageError("no registry to push to", where="image.registry", hint="set DOCS_ASSISTANT_IMAGE__REGISTRY")
    client = docker_client()
    auth = _auth(settings)
    if auth is not None:  # a wrong password fails here, clearly, before any layer moves
        try:
            client.login(registry=registry, reauth=True, **auth)
        except APIError as err:
            if err.status_code == 401 or "unauthorized" in str(err.explanation or err).lower():
                raise ImageError(
                    f"the registry refused the credentials: {err.explanation or err}",
                    where=f"registry {registry}",
                    hint="check DOCS_ASSISTANT_IMAGE__USERNAME and DOCS_ASSISTANT_IMAGE__PASSWORD",
                ) from err
            raise ImageError(
                f"cannot log in to the registry: {err.explanation or err}",
                where=f"registry {registry}",
                hint="is it running, and is image.registry right?",
            ) from err
    digests: set[str] = set()
    for tag in built.tags:
        repo, _, name = tag.rpartition(":")
        try:
            events = client.api.push(repo, tag=name, stream=True, decode=True, auth_config=auth)
            aux = _stream(events, progress, built.log, f"docker push {tag}", where=f"registry {registry}")
        except APIError as err:
            raise ImageError(
                f"docker push {tag} failed: {err.explanation or err}", where=f"registry {registry}"
            ) from err
        if not aux.get("Digest"):
            raise ImageError(f"the registry did not confirm {tag} with a digest", where=f"registry {registry}")
        digests.add(aux["Digest"])
    if len(digests) != 1:
        raise ImageError(
            f"the tags were pushed as different manifests: {sorted(digests)}", where=f"registry {registry}"
        )
    built.repository = built.tags[0].rpartition(":")[0]
    built.digest = digests.pop()
    return built


def pull_by_digest(settings: Settings, reference: str) -> str:
    """Pull `repo@sha256:...` and return the pulled image's id: what the deployment will really run."""
    from docker.errors import APIError

    client = docker_client()
    try:
        image = client.images.pull(reference, auth_config=_auth(settings))
    except APIError as err:
        raise ImageError(f"pull failed: {err.explanation or err}", where=reference) from err
    return image.id


def publish(settings: Settings, built: BuiltImage, progress: Progress = print) -> BuiltImage:
    """Push, then pull back by digest: the registry must hand back the very image that was built."""
    push(settings, built, progress)
    pulled = pull_by_digest(settings, built.reference)  # type: ignore[arg-type]
    if pulled != built.image_id:
        raise ImageError(
            f"pulled {built.reference} as {pulled}, but built {built.image_id}",
            where=f"registry {settings.image.registry}",
        )
    return built


def local_image(settings: Settings, *, root: Path, version: str) -> BuiltImage:
    """The image `build` made for this version and commit, found by its tags."""
    from docker.errors import ImageNotFound

    tags = image_tags(settings, version, git_sha(root))
    try:
        image = docker_client().images.get(tags[0])
    except ImageNotFound as err:
        raise ImageError(
            f"no local image {tags[0]}", where="image.repository", hint="run `docs-assistant image build` first"
        ) from err
    missing = [t for t in tags if t not in image.tags]
    if missing:
        raise ImageError(f"{tags[0]} is not tagged {missing}: it was built from another commit", where=tags[0])
    return BuiltImage(image_id=image.id, tags=tags, labels=image.labels, size=image.attrs["Size"])


def build_and_push(
    settings: Settings,
    *,
    root: Path,
    version: str,
    push_image: bool,
    release: Mapping[str, Any] | None = None,
    progress: Progress = print,
) -> tuple[BuiltImage, BuildPlan]:
    """Stage, build, and (with `push_image`) publish: push and pull back by digest."""
    sha = git_sha(root)
    with tempfile.TemporaryDirectory(prefix="docs-assistant-image-") as tmp:
        context = Path(tmp) / "context"
        plan = stage_context(settings, context, root=root, version=version, release=release, progress=progress)
        built = build(settings, plan, image_tags(settings, version, sha), progress)
    if push_image:
        publish(settings, built, progress)
    return built, plan


STAGE = "build_image"


def release_version(settings: Settings, root: Path) -> tuple[str, Path | None]:
    """(the version to tag, the release manifest to record the image in, if a release of this commit ran).

    A manifest of another commit is refused: the image would claim a release it was not built from.
    """
    import tomllib

    from docs_assistant.release.manifest import load_manifest, manifest_path

    path = manifest_path(settings.paths.reports_dir)
    if not path.is_file():
        pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
        return str(pyproject["project"]["version"]), None
    manifest = load_manifest(path)
    here = git_sha(root)
    if manifest["git_sha"] != here:
        raise ImageError(
            f"the release manifest is for commit {manifest['git_sha']}, but the checkout is at {here}",
            where=path,
            hint="run `docs-assistant release` (or `--dry-run`) for this commit first, or delete the old manifest",
        )
    return str(manifest["version"]), path


def record_in_manifest(manifest: Path | None, built: BuiltImage, sbom: dict[str, Any] | None = None) -> None:
    """Pin the image (digest, tags, labels) and its SBOM in the release manifest the deployments will read."""
    if manifest is not None:
        from docs_assistant.release.manifest import update_manifest

        update_manifest(manifest, image=built.as_manifest(), **({"sbom": sbom} if sbom else {}))


def image_sbom(settings: Settings, built: BuiltImage, root: Path) -> dict[str, Any]:
    """CycloneDX SBOM of the image's Python packages, next to the release manifest."""
    from docs_assistant.release.sbom import write_sbom

    dest = settings.paths.reports_dir / "release" / "sbom.cdx.json"
    return write_sbom(docker_client(), built.image_id, dest, pyproject=root / "pyproject.toml")


def write_image_report(
    settings: Settings, built: BuiltImage, plan: BuildPlan | None, sbom: dict[str, Any] | None = None
) -> Path:
    """reports/build_image/summary.{json,md}: what was built and where it can be pulled from."""
    from docs_assistant.reports import markdown_table, write_report

    summary = {
        "stage": STAGE,
        "image": built.as_manifest(),
        "model": plan.model if plan else None,
        "buildargs": plan.buildargs if plan else None,
        "sbom": sbom,
    }
    rows = [
        ["reference", built.reference or "(not pushed)"],
        ["tags", ", ".join(built.tags)],
        ["size", f"{built.size / 1e6:.0f} MB"],
        ["SBOM", f"{sbom['path']} ({sbom['components']} components)" if sbom else "-"],
        *[[k, v] for k, v in sorted(built.labels.items()) if k.startswith(LABEL_PREFIX)],
    ]
    markdown = "## Image\n\n" + markdown_table(["", ""], rows) + "\n"
    return write_report(settings.paths.reports_dir, STAGE, summary, markdown)


def run_build_image(
    settings: Settings,
    root: Path,
    *,
    version: str | None = None,
    push_image: bool | None = None,
    progress: Progress = print,
) -> tuple[BuiltImage, Path]:
    """The build_image stage: build what the release manifest pins, push it (when a registry is set or asked),
    write its SBOM and report, and record it in the manifest; returns the image and the report's path.

    A `version` other than the release's builds and reports, but leaves the release manifest alone.
    """
    from docs_assistant.release.manifest import load_manifest

    released, manifest = release_version(settings, root)
    built, plan = build_and_push(
        settings,
        root=root,
        version=version or released,
        push_image=bool(settings.image.registry) if push_image is None else push_image,
        release=load_manifest(manifest) if manifest else None,
        progress=progress,
    )
    sbom = image_sbom(settings, built, root)
    report = write_image_report(settings, built, plan, sbom)
    if version in (None, released):
        record_in_manifest(manifest, built, sbom)
    return built, report


def run_push_image(
    settings: Settings, root: Path, *, version: str | None = None, progress: Progress = print
) -> BuiltImage:
    """Push an image built before (found by its version and git SHA tags), pull it back by digest, record it."""
    released, manifest = release_version(settings, root)
    built = publish(settings, local_image(settings, root=root, version=version or released), progress=progress)
    if version in (None, released):
        record_in_manifest(manifest, built)
    return built


__all__ = [
    "BuildPlan",
    "BuiltImage",
    "build",
    "build_and_push",
    "image_tags",
    "pull_by_digest",
    "push",
    "run_build_image",
    "run_push_image",
    "stage_context",
]
