"""The image on the real Docker Engine and registry: build once, push, pull by digest, run, answer.

One build per module (several minutes cold); the failure tests reuse its cached layers.
"""

from __future__ import annotations

import io
import json
import secrets
import shutil
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docs_assistant.errors import ImageError, RegistryError
from docs_assistant.registry import CHAMPION, ModelRegistry
from docs_assistant.registry.hashing import adapter_hash
from docs_assistant.release.image import (
    BuiltImage,
    build,
    build_and_push,
    image_sbom,
    publish,
    record_in_manifest,
    release_version,
    stage_context,
)
from docs_assistant.release.image import _stream as relay_build_events
from docs_assistant.release.manifest import load_manifest
from docs_assistant.release.stage import run_release

from ..conftest import REPO, ingest_and_index, make_project, training_run, with_registry  # noqa: TID252 - shared project helpers
from .conftest import BASE_IMAGE, REGISTRY, free_port, image_settings, wait_ready

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def image_project(tmp_path_factory, models_dir, embedder, blank_registry_db, lora_adapters, docker_client):
    """A small indexed project whose registry has a champion adapter."""
    project = ingest_and_index(make_project(tmp_path_factory.mktemp("image") / "project", models_dir, 4), embedder)
    with_registry(project, blank_registry_db)
    registry = ModelRegistry(project.settings())
    run_id = registry.log_run(training_run(lora_adapters[0]))
    registry.register(run_id, adapter_hash(lora_adapters[0]))
    registry.set_alias(CHAMPION, 1)
    return project


def settings_for(project, **image: Any) -> Any:
    # The eval gate has tests of its own (tests/integration/test_release.py); here it would cost a full eval run.
    return project.settings(
        model={"adapter_alias": CHAMPION}, image=image_settings(**image), release={"require_eval_gate": False}
    )


@pytest.fixture(scope="module")
def released(image_project) -> Path:
    """A release (dry run: the checkout may be dirty) of this checkout: the manifest the image joins."""
    return run_release(settings_for(image_project), root=REPO, dry_run=True).manifest_path


@pytest.fixture(scope="module")
def pushed(image_project, released) -> BuiltImage:
    settings = settings_for(image_project)
    version, manifest = release_version(settings, REPO)
    assert manifest == released
    pins = load_manifest(manifest)
    built, _ = build_and_push(
        settings, root=REPO, version=version, push_image=True, release=pins, progress=lambda _: None
    )
    record_in_manifest(manifest, built, image_sbom(settings, built, REPO))
    return built


def post_json(url: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == status
        return json.loads(response.read())


@pytest.fixture
def feedback_volume(docker_client) -> Iterator[str]:
    """A new named volume, as the swarm deploy mounts one per environment; removed after the test's containers
    (requested before `run_container`, so torn down after it)."""
    name = f"da-test-feedback-{secrets.token_hex(3)}"
    docker_client.volumes.create(name)
    yield name
    docker_client.volumes.get(name).remove(force=True)


def test_release_build_push_pull_run_answers_and_the_manifest_pins_the_digest_that_ran(
    pushed, released, docker_client, feedback_volume, run_container
) -> None:
    assert pushed.digest is not None
    assert pushed.digest.startswith("sha256:")
    manifest = load_manifest(released)
    reference = manifest["image"]["reference"]
    assert reference == f"{REGISTRY}/docs-assistant-test@{pushed.digest}"
    pulled = docker_client.images.pull(reference, auth_config={"username": "ci", "password": "ci-password"})
    assert pulled.id == pushed.image_id

    running = run_container(reference, volumes={feedback_volume: {"bind": "/app/feedback", "mode": "rw"}})
    assert running.container.image.id == manifest["image"]["id"]
    wait_ready(running.url, running.container)
    answer = post_json(f"{running.url}/v1/answer", {"question": "How do I rotate the admin token?"})
    assert answer["answer"].strip()
    assert answer["sources"], "retrieval from the index baked into the image returned nothing"
    # feedback on the read-only root: the non-root user appends to the volume (a new one takes the image
    # directory's owner), never to the feature store baked into the image
    rated = post_json(f"{running.url}/v1/feedback", {"answer_id": answer["id"], "rating": 1}, status=201)
    stream, _ = running.container.get_archive("/app/feedback")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        logs = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".jsonl")]
        (row,) = [json.loads(line) for m in logs for line in tar.extractfile(m).read().splitlines()]  # type: ignore[union-attr]
    assert (row["id"], row["answer_id"], row["answer"]) == (rated["id"], answer["id"], answer["answer"])

    with urllib.request.urlopen(f"{running.url}/readyz", timeout=5) as response:
        phases = json.loads(response.read())["phases"]
    assert {"model", "index", "warmup"} <= phases.keys()
    assert running.container.attrs["Config"]["User"] == "10001"
    assert running.container.attrs["HostConfig"]["ReadonlyRootfs"] is True


def test_labels_pin_the_source_model_adapter_and_prompts(pushed, image_project, released) -> None:
    labels = pushed.labels
    registry = ModelRegistry(settings_for(image_project))
    champion = registry.get(CHAMPION)
    assert champion is not None
    assert labels["io.docs-assistant.adapter.sha256"] == champion.adapter_hash
    assert labels["io.docs-assistant.adapter.version"] == str(champion.version)
    assert labels["io.docs-assistant.model"] == "tiny-random-llama"
    assert labels["org.opencontainers.image.version"] == load_manifest(released)["version"]
    assert len(labels["org.opencontainers.image.revision"].removesuffix("-dirty")) == 40
    assert labels["org.opencontainers.image.created"].endswith("Z")
    assert "rag-answer@1:" in labels["io.docs-assistant.prompts"]


def test_the_image_carries_the_adapter_the_release_pins_and_building_it_trained_nothing(
    pushed, released, image_project, docker_client
) -> None:
    pinned = load_manifest(released)["adapter"]
    assert pinned["version"] == 1
    assert pushed.labels["io.docs-assistant.adapter.sha256"] == pinned["hash"]
    assert pushed.labels["io.docs-assistant.adapter.version"] == "1"
    inside = docker_client.containers.run(
        pushed.image_id,
        entrypoint=["python", "-c"],
        command=["from docs_assistant.registry.hashing import adapter_hash; print(adapter_hash('/app/model/adapter'))"],
        remove=True,
    )
    assert inside.decode().strip() == pinned["hash"], "the bytes in the image are the ones the release pinned"
    registry = ModelRegistry(settings_for(image_project))
    assert [v.version for v in registry.versions()] == [1], "build_image registered (trained) nothing"


def test_a_moved_alias_does_not_change_what_a_release_pins_and_a_wrong_pin_is_refused(
    image_project, released, lora_adapters, tmp_path: Path
) -> None:
    settings = settings_for(image_project)
    registry = ModelRegistry(settings)
    pins = load_manifest(released)
    newer = registry.register(registry.log_run(training_run(lora_adapters[1])), adapter_hash(lora_adapters[1]))
    registry.set_alias(CHAMPION, newer.version)  # promoted after the release was cut
    try:
        plan = stage_context(settings, tmp_path / "a", root=REPO, version="0", release=pins, progress=lambda _: None)
        assert plan.model["adapter"]["version"] == pins["adapter"]["version"] == 1
        assert plan.model["adapter"]["sha256"] == pins["adapter"]["hash"] != newer.adapter_hash
        unpinned = stage_context(settings, tmp_path / "b", root=REPO, version="0", progress=lambda _: None)
        assert unpinned.model["adapter"]["version"] == newer.version, "without a release the alias decides"

        forged = pins | {"adapter": pins["adapter"] | {"hash": newer.adapter_hash}}
        with pytest.raises(ImageError, match="but the release pinned") as err:
            stage_context(settings, tmp_path / "c", root=REPO, version="0", release=forged, progress=lambda _: None)
        assert "release manifest 'adapter'" in str(err.value)
        missing = pins | {"adapter": pins["adapter"] | {"version": 99}}
        with pytest.raises(ImageError, match=r"version 99, which the registry at .* does not hold"):
            stage_context(settings, tmp_path / "d", root=REPO, version="0", release=missing, progress=lambda _: None)
    finally:
        registry.set_alias(CHAMPION, 1)
        registry.client.delete_model_version(registry.name, str(newer.version))


def test_an_index_changed_since_the_release_is_refused(image_project, released, tmp_path: Path) -> None:
    pins = load_manifest(released)
    pinned = pins["data"]["table_versions"]["chunks"]
    moved = pins | {"data": pins["data"] | {"table_versions": {"chunks": pinned - 1}}}
    with pytest.raises(ImageError, match=f"the vector index is at version {pinned}, but the release pinned") as err:
        stage_context(
            settings_for(image_project),
            tmp_path / "ctx",
            root=REPO,
            version="0",
            release=moved,
            progress=lambda _: None,
        )
    assert "release again" in str(err.value)
    assert not (tmp_path / "ctx").exists(), "refused before anything was staged"


def test_the_cpu_image_carries_no_cuda_libraries(pushed, docker_client) -> None:
    out = docker_client.containers.run(
        pushed.image_id,
        entrypoint=["python", "-c"],
        command=[
            "import torch, pathlib, sysconfig; site = pathlib.Path(sysconfig.get_paths()['purelib']);"
            "print(torch.version.cuda); print(sorted(p.name for p in site.iterdir() if 'nvidia' in p.name"
            " or p.name.startswith(('triton', 'cuda'))))"
        ],
        remove=True,
    )
    cuda_version, cuda_packages = out.decode().splitlines()
    assert cuda_version == "None"
    assert cuda_packages == "[]"


def test_a_wrong_password_is_refused_and_nothing_is_reported_pushed(pushed, image_project) -> None:
    built = BuiltImage(image_id=pushed.image_id, tags=pushed.tags, labels=pushed.labels, size=pushed.size)
    with pytest.raises(ImageError, match="refused the credentials") as err:
        publish(settings_for(image_project, password="wrong"), built, progress=lambda _: None)
    assert "DOCS_ASSISTANT_IMAGE__PASSWORD" in str(err.value)
    assert built.digest is None
    assert built.reference is None


def test_a_registry_that_is_down_gives_a_clear_error(pushed, image_project) -> None:
    down = f"127.0.0.1:{free_port()}"
    built = BuiltImage(image_id=pushed.image_id, tags=[f"{down}/x:1"], labels={}, size=0)
    with pytest.raises(ImageError, match=f"registry {down}") as err:
        publish(settings_for(image_project, registry=down), built, progress=lambda _: None)
    assert "connection refused" in str(err.value).lower()
    assert built.digest is None


def test_a_tampered_adapter_fails_the_build_before_docker_runs(image_project, tmp_path: Path) -> None:
    settings = settings_for(image_project)
    registry = ModelRegistry(settings)
    info = registry.get(CHAMPION)
    stored = registry.settings.paths.state_dir.resolve() / "mlflow" / "artifacts" / info.run_id / "artifacts"
    weights = stored / "adapter" / "adapter_model.safetensors"
    original = weights.read_bytes()
    cached = settings.paths.models_dir / "adapters"
    shutil.rmtree(cached, ignore_errors=True)  # no verified copy to fall back on: the stored bytes are read
    try:
        weights.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(RegistryError, match="does not match its registered hash"):
            stage_context(settings, tmp_path / "context", root=REPO, version="0", progress=lambda _: None)
    finally:
        weights.write_bytes(original)


def test_bytes_changed_after_staging_fail_the_checksum_step_in_the_build(pushed, image_project, tmp_path) -> None:
    settings = settings_for(image_project)
    plan = stage_context(settings, tmp_path / "context", root=REPO, version="0", progress=lambda _: None)
    weights = plan.context / "bundle" / "model" / "adapter" / "adapter_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ImageError, match="docker build failed") as err:
        build(settings, plan, ["docs-assistant-test:tampered"], progress=lambda _: None)
    assert "adapter_model.safetensors: FAILED" in str(err.value)


def test_the_sbom_lists_what_the_image_holds_and_the_manifest_pins_it(pushed, released) -> None:
    manifest = load_manifest(released)
    sbom = manifest["sbom"]
    path = Path(sbom["path"])
    assert path.parent == released.parent  # next to the manifest
    bom = json.loads(path.read_text(encoding="utf-8"))
    assert bom["bomFormat"] == "CycloneDX"
    versions = {c["name"]: c["version"] for c in bom["components"]}
    assert sbom["components"] == len(versions) == sbom["packages_in_image"]
    assert versions["torch"].endswith("+cpu")  # the image's torch, not the lock's CUDA build
    assert not [name for name in versions if name.startswith("nvidia-")]
    assert {"transformers", "peft", "lancedb", "fastapi"} <= versions.keys()
    assert bom["metadata"]["component"]["name"] == "docs-assistant"


def test_a_failed_build_shows_the_steps_last_lines_plainly_and_the_setting(docker_client, tmp_path: Path) -> None:
    """A real failing step (coloured, with a progress redraw): its lines arrive without control codes."""
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\n"
        'RUN d=Download; printf "${d}ing 10%%\\r\\033[2K${d}ing 99%%\\n"; '
        "printf '\\033[1;31merror:\\033[0m No solution found when resolving torch==9.9.9+cpu\\n' >&2; exit 1\n",
        encoding="utf-8",
    )
    events = docker_client.api.build(path=str(tmp_path), rm=True, forcerm=True, pull=False, decode=True)
    with pytest.raises(ImageError) as failed:
        relay_build_events(events, lambda _: None, [], "docker build", where="deploy/Dockerfile")
    text = str(failed.value)
    assert "\x1b" not in text
    assert "\r" not in text
    assert "error: No solution found when resolving torch==9.9.9+cpu" in text
    assert "Downloading 99%" in text
    assert "Downloading 10%" not in text  # the redrawn progress line shows its last state only
    assert "docker build failed: The command '/bin/sh -c" in text
    assert failed.value.hint is not None
    assert "DOCS_ASSISTANT_IMAGE__TORCH_WHEELS" in failed.value.hint
