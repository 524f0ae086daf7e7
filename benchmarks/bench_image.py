"""The service image: its size against what it must carry, rebuilds against cold builds, container start-up.

Three ratios, each measured in one run on the real Docker Engine (`docker.from_env()`: DOCKER_HOST or the
local socket) from one scratch project, ingested and indexed first (untimed, `_server.prepare`), whose build
context `image.stage_context` stages once from this repository:

1. **size**: the image's size as the engine reports it (`attrs["Size"]`, base image included) against the
   bytes it must carry, measured inside the built image with `du -sb`: the locked packages (`/app/.venv`),
   the model (`/app/model`), the index (`/app/var`), the app (`/app/site`) and the prompts (`/app/prompts`).
   Overhead = size / content - 1; deterministic, so one sample. The base image's size is reported beside it.
2. **rebuild**: `image.build` after a code-only change (a comment line appended to a module under the
   staged context's `src/`, different every time) against a cold build (`build(..., nocache=True)`: every
   step afresh, including the locked-package install). The cold builds come first, then one untimed build
   of the unchanged context (see `settle_build` in the results: after a `nocache` build the classic builder
   can miss its own fresh layers once), so the rebuilds reuse their layers. The build's own step durations
   (from its log) show where a cold build spends its time.
3. **start-up**: `containers.run` (detached, read-only root, `/tmp` as tmpfs, no capabilities, published on
   a free loopback port) to `GET /readyz` 200, against `docs-assistant serve` started as a process on the
   same scratch project to `/readyz` 200 (`_server.serve`). One untimed warm-up of each first, then pairs
   alternating their order; the container's `/readyz` phases are reported.

Settings: the `image` section comes from the environment as usual (`DOCS_ASSISTANT_IMAGE__BASE_IMAGE`,
`__NETWORK_MODE`, `__TORCH_WHEELS`, ...), read before the scratch project's clean environment replaces it;
the repository defaults to `docs-assistant-bench`. Cold builds: `BENCH_IMAGE_COLD_BUILDS` (default 1: each
one takes minutes and leaves gigabytes of layers). The images it builds are removed at the end (by their
tags: layers other images use stay) unless `BENCH_IMAGE_KEEP=1`.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks._project import ENV_PREFIX, ROOT, scratch_project
from benchmarks._server import POLL_S, READY_WITHIN_S, client, free_port, prepare, process_env, serve
from benchmarks._stats import BenchResult, ratio, summarize

NAME = "image"
DEFAULT_REPEAT = 3  # rebuilds and container/process start-up pairs; cold builds: BENCH_IMAGE_COLD_BUILDS (1)
TARGET_SIZE_OVERHEAD = 0.15
TARGET_REBUILD_SHARE = 0.15
TARGET_START_RATIO = 1.2
IMAGE_ENV = f"{ENV_PREFIX}IMAGE__"
DEFAULT_REPOSITORY = "docs-assistant-bench"
CONTENT_PATHS = ("/app/.venv", "/app/model", "/app/var", "/app/site", "/app/prompts")
#: the module a code-only change touches (in the staged context's copy, never the checkout's)
CHANGED_MODULE = Path("src/docs_assistant/__init__.py")
#: a build arriving at the engine while another session builds may find the torch wheel's port taken
PORT_BUSY_RETRIES, PORT_BUSY_WAIT_S = 20, 15.0
STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


def _engine() -> Any:
    """The Docker client, or a RuntimeError that says why the benchmark cannot run."""
    from docs_assistant.engine import docker_client
    from docs_assistant.errors import ImageError

    try:
        return docker_client()
    except ImageError as err:
        raise RuntimeError(f"benchmark {NAME!r} needs a Docker Engine: {err}") from None
    except ImportError as err:  # the docker SDK is not installed
        raise RuntimeError(f"benchmark {NAME!r} needs the docker SDK for Python: {err}") from None


class _StepClock:
    """A progress callback that timestamps the build's `Step N/M : ...` lines: seconds per Dockerfile step."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []
        self._current: tuple[str, float] | None = None
        self.cached = 0

    def __call__(self, line: str) -> None:
        now = time.perf_counter()
        if "Using cache" in line:
            self.cached += 1
        match = STEP.match(line.strip())
        if match:
            self._close(now)
            self._current = (f"{match[1]}/{match[2]} {match[3][:90]}", now)

    def _close(self, now: float) -> None:
        if self._current is not None:
            self.steps.append((self._current[0], round(now - self._current[1], 2)))
            self._current = None

    def finish(self) -> None:
        self._close(time.perf_counter())

    def slowest(self, n: int = 5) -> list[dict[str, Any]]:
        return [{"step": s, "s": t} for s, t in sorted(self.steps, key=lambda st: -st[1])[:n]]


def _build(settings: Any, plan: Any, tag: str, *, nocache: bool = False) -> tuple[float, Any, _StepClock]:
    """Seconds of one `image.build` (the timed part), the image it made, and its step timings."""
    from docs_assistant.errors import ImageError
    from docs_assistant.release.image import WHEELS_PORT, build

    for attempt in range(PORT_BUSY_RETRIES + 1):
        clock = _StepClock()
        t0 = time.perf_counter()
        try:
            built = build(settings, plan, [tag], progress=clock, nocache=nocache)
        except ImageError as err:
            if f"127.0.0.1:{WHEELS_PORT}" in str(err) and attempt < PORT_BUSY_RETRIES:
                time.sleep(PORT_BUSY_WAIT_S)  # another build serves its torch wheel: wait, untimed
                continue
            raise RuntimeError(f"image build failed: {err}") from err
        seconds = time.perf_counter() - t0
        clock.finish()
        return seconds, built, clock
    raise AssertionError("unreachable")


def _content_bytes(docker: Any, image_id: str) -> dict[str, int]:
    """`du -sb` of each path the image must carry, run inside the image itself."""
    out = docker.containers.run(
        image_id, entrypoint=["du"], command=["-sb", *CONTENT_PATHS], remove=True, network_mode="none"
    )
    sizes: dict[str, int] = {}
    for line in out.decode().splitlines():
        size, path = line.split("\t", 1)
        sizes[path] = int(size)
    missing = [p for p in CONTENT_PATHS if p not in sizes]
    if missing:
        raise RuntimeError(f"du found no {missing} in the image {image_id}: {out.decode()!r}")
    return sizes


def _container_ready(docker: Any, image_id: str) -> tuple[float, dict[str, float]]:
    """Seconds from `containers.run` to `/readyz` 200, and the phases (ms) the container's `/readyz` reports."""
    port = free_port()
    t0 = time.perf_counter()
    container = docker.containers.run(
        image_id,
        detach=True,
        read_only=True,
        tmpfs={"/tmp": "rw,size=256m"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        ports={"8000/tcp": ("127.0.0.1", port)},
    )
    try:
        last_check = t0
        with client(f"http://127.0.0.1:{port}", timeout=10) as http:
            while True:
                try:
                    response = http.get("/readyz")
                except httpx.TransportError:  # not listening yet (or docker-proxy's reset before it is)
                    response = None
                now = time.perf_counter()
                if response is not None:
                    body = response.json()
                    if response.status_code == 200:
                        return now - t0, body.get("phases", {})
                    if "error" in body:
                        raise RuntimeError(f"container start-up failed: {body}; log:\n{_logs(container)}")
                if now - last_check > 1.0:  # an engine call: once a second, not every poll
                    last_check = now
                    container.reload()
                    if container.status in ("exited", "dead"):
                        raise RuntimeError(f"container exited before ready; log:\n{_logs(container)}")
                if now - t0 > READY_WITHIN_S:
                    raise RuntimeError(f"container not ready within {READY_WITHIN_S:.0f} s; log:\n{_logs(container)}")
                time.sleep(POLL_S)
    finally:
        container.remove(force=True)


def _logs(container: Any) -> str:
    try:
        return container.logs().decode(errors="replace")[-3000:]
    except Exception as err:  # the log is only context for another error
        return f"(no log: {err})"


def _process_ready(root: Path, env: dict[str, str]) -> tuple[float, dict[str, float]]:
    with serve(root, env, name="image-peer") as server:
        assert server.ready_s is not None
        return server.ready_s, server.readyz.get("phases", {})


def _remove(docker: Any, tags: list[str]) -> list[str]:
    """Untag (and so delete, where nothing else uses them) the images this run built, newest first."""
    problems = []
    for tag in reversed(tags):
        try:
            docker.images.remove(tag)
        except Exception as err:  # cleanup must not hide the result; say what is left behind
            problems.append(f"{tag}: {err}")
    return problems


def run(repeat: int = DEFAULT_REPEAT) -> BenchResult:
    from docs_assistant.config import load_settings
    from docs_assistant.rag.embeddings import load_embedder
    from docs_assistant.release.image import stage_context
    from docs_assistant.serve.startup import PHASES

    cold_builds = int(os.environ.get("BENCH_IMAGE_COLD_BUILDS", "1"))
    if cold_builds < 1:
        raise RuntimeError("BENCH_IMAGE_COLD_BUILDS must be at least 1")
    keep = os.environ.get("BENCH_IMAGE_KEEP") == "1"
    # the image section from the environment, read before scratch_project scrubs every DOCS_ASSISTANT_ variable
    image_env = {k: v for k, v in os.environ.items() if k.startswith(IMAGE_ENV)}
    image_env.setdefault(f"{IMAGE_ENV}REPOSITORY", DEFAULT_REPOSITORY)
    docker = _engine()

    built_tags: list[str] = []
    cold_s: list[float] = []
    rebuild_s: list[float] = []
    cold_steps: list[list[dict[str, Any]]] = []
    rebuild_steps: list[list[dict[str, Any]]] = []
    rebuild_cached: list[int] = []
    container_s: list[float] = []
    process_s: list[float] = []
    container_phases: dict[str, list[float]] = {p: [] for p in PHASES}
    process_phases: dict[str, list[float]] = {p: [] for p in PHASES}
    warm_up: dict[str, float] = {}
    cleanup: list[str] = []
    with scratch_project(NAME) as root:
        os.environ.update(image_env)  # scratch_project restores the environment on exit
        settings = load_settings()
        image = settings.image
        try:
            base = docker.images.get(image.base_image)
        except Exception as err:
            raise RuntimeError(
                f"base image {image.base_image!r} is not in the engine ({err}); build it (.ci/docker.sh) or set "
                f"{IMAGE_ENV}BASE_IMAGE to one that is"
            ) from None
        t0 = time.perf_counter()
        prepare(settings, load_embedder(settings.embedding))
        prepare_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        plan = stage_context(settings, root / "context", root=ROOT, version="0.0.0-bench", progress=lambda _: None)
        stage_s = time.perf_counter() - t0
        context_bytes = sum(p.stat().st_size for p in plan.context.rglob("*") if p.is_file())
        repository = f"{image.registry.rstrip('/')}/{image.repository}" if image.registry else image.repository
        try:
            for i in range(cold_builds):
                tag = f"{repository}:bench-cold-{i + 1}"
                built_tags.append(tag)
                seconds, built, clock = _build(settings, plan, tag, nocache=True)
                cold_s.append(seconds)
                cold_steps.append(clock.slowest())
            # Untimed: after a `nocache` build the engine holds sibling copies of the same steps (the stages'
            # shared first steps are rebuilt too), and the classic builder follows the newest match, which
            # can be a branch without the next step: its first cached build may re-run the locked install.
            # One build of the unchanged context settles that, so the rebuilds measure a code-only change.
            tag = f"{repository}:bench-settle"
            built_tags.append(tag)
            seconds, built, clock = _build(settings, plan, tag)
            settle = {"s": round(seconds, 2), "cached_steps": clock.cached, "slowest_steps": clock.slowest(3)}
            module = plan.context / CHANGED_MODULE
            for i in range(repeat):
                with open(module, "a", encoding="utf-8") as fh:
                    fh.write(f"# benchmark code-only change {i + 1} at {time.time_ns()}\n")
                tag = f"{repository}:bench-rebuild-{i + 1}"
                built_tags.append(tag)
                seconds, built, clock = _build(settings, plan, tag)
                rebuild_s.append(seconds)
                rebuild_steps.append(clock.slowest(3))
                rebuild_cached.append(clock.cached)

            content = _content_bytes(docker, built.image_id)
            size = int(built.size)

            env = process_env()
            warm_up["container_s"], _ = _container_ready(docker, built.image_id)
            warm_up["process_s"], _ = _process_ready(root, env)
            for i in range(repeat):
                for side in ("container", "process") if i % 2 == 0 else ("process", "container"):
                    if side == "container":
                        seconds, phases = _container_ready(docker, built.image_id)
                        container_s.append(seconds)
                        target = container_phases
                    else:
                        seconds, phases = _process_ready(root, env)
                        process_s.append(seconds)
                        target = process_phases
                    for p in PHASES:
                        target[p].append(phases.get(p, 0.0) / 1000)
        finally:
            if not keep:
                cleanup = _remove(docker, built_tags)

    content_total = sum(content.values())
    overhead = round(size / content_total - 1, 4)
    cold, rebuild = summarize(cold_s), summarize(rebuild_s)
    rebuild_share = ratio(rebuild["p50"], cold["p50"])
    ctr, proc = summarize(container_s), summarize(process_s)
    start_ratio = ratio(ctr["p50"], proc["p50"])
    paired = summarize([c / p for c, p in zip(container_s, process_s, strict=True)])
    met = {
        "size": overhead <= TARGET_SIZE_OVERHEAD,
        "rebuild": rebuild_share <= TARGET_REBUILD_SHARE,
        "start": start_ratio <= TARGET_START_RATIO,
    }
    mb = 1e6
    return BenchResult(
        name=NAME,
        description="the service image: size vs the bytes it must carry; rebuild after a code-only change vs a "
        "cold build; container start to /readyz 200 vs the same service as a process",
        repeat=repeat,
        target=f"size overhead <= {TARGET_SIZE_OVERHEAD:.0%}; rebuild <= {TARGET_REBUILD_SHARE:.0%} of cold; "
        f"start <= {TARGET_START_RATIO}x",
        target_metric="start_ratio_p50 (container p50 / process p50); all three targets decide 'met'",
        measured=start_ratio,
        met=all(met.values()),
        headline=(
            f"size {size / mb:.0f} MB vs content {content_total / mb:.0f} MB (+{overhead:.1%}, base "
            f"{base.attrs['Size'] / mb:.0f} MB); rebuild {rebuild['p50']:.1f} s vs cold {cold['p50']:.0f} s "
            f"({rebuild_share:.1%}); start {ctr['p50']:.2f} s vs process {proc['p50']:.2f} s ({start_ratio:.2f}x; "
            f"container {ctr['min']:.2f}-{ctr['max']:.2f}, process {proc['min']:.2f}-{proc['max']:.2f})"
        ),
        params={
            "cold_builds": cold_builds,
            "rebuilds": repeat,
            "start_pairs": repeat,
            "warm_up": "one untimed container and one untimed process before the pairs",
            "poll_interval_s": POLL_S,
            "base_image": image.base_image,
            "network_mode": image.network_mode,
            "torch_flavour": image.torch_flavour,
            "torch_wheels": str(image.torch_wheels) if image.torch_wheels else None,
            "repository": repository,
            "changed_module": CHANGED_MODULE.as_posix(),
            "content_paths": list(CONTENT_PATHS),
            "model": settings.model.name,
        },
        results={
            "met": met,
            "size": {
                "image_bytes": size,
                "content_bytes": content_total,
                "content_by_path": content,
                "overhead": overhead,
                "base_image_bytes": int(base.attrs["Size"]),
                "target": TARGET_SIZE_OVERHEAD,
            },
            "rebuild": {
                "cold_s": cold,
                "rebuild_s": rebuild,
                "rebuild_share_p50": rebuild_share,
                "rebuild_share_paired_max": ratio(rebuild["max"], cold["min"]),
                "target": TARGET_REBUILD_SHARE,
                "cold_slowest_steps": cold_steps,
                "rebuild_slowest_steps": rebuild_steps,
                "rebuild_cached_steps": rebuild_cached,
            },
            "start": {
                "container_s": ctr,
                "process_s": proc,
                "ratio_p50": start_ratio,
                "ratio_paired": paired,
                "container_phases_s": {p: summarize(v) for p, v in container_phases.items()},
                "process_phases_s": {p: summarize(v) for p, v in process_phases.items()},
                "warm_up": {k: round(v, 3) for k, v in warm_up.items()},
                "target": TARGET_START_RATIO,
            },
            "settle_build": settle,
            "setup_s": {"prepare": round(prepare_s, 3), "stage_context": round(stage_s, 3)},
            "context_bytes": context_bytes,
            "kept_images": built_tags if keep else [],
            "cleanup_problems": cleanup,
        },
    )
