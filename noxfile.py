"""Every stage of the Docs Assistant life cycle, the same on a laptop and in GitHub Actions.

Sessions install from `uv.lock` (`uv sync --frozen`), so what runs here is exactly what CI runs.
`nox -s pipeline` runs the stages in order; `nox -l` lists them.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import nox
import nox.command

nox.needs_version = ">=2025.5.1"
nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "tests", "docs"]
nox.options.error_on_external_run = True

# Offline first: no stage may reach a model hub at run time.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


#: the one environment every stage session shares (they need the same packages): synced once, not per session
STAGES_ENV = Path(".nox/stages")
#: fine-tuning is optional: a project rendered with `include_finetuning=no` has no train/ package
FINETUNING = (Path(__file__).parent / "src" / "docs_assistant" / "train").is_dir()
#: what the stage sessions install on top of the project: the image tools and the load-test gate's locust
STAGE_GROUPS = ("release", "loadtest")


def install_locked(session: nox.Session, *groups: str, only: bool = False) -> None:
    """Sync the session's venv from uv.lock: the project plus `groups`, or with `only` just the groups."""
    flag = "--only-group" if only else "--group"
    args = ["uv", "sync", "--frozen", "--no-default-groups", *(f"{flag}={g}" for g in groups)]
    session.run_install(*args, env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location}, silent=True)


def stage(session: nox.Session, *args: str, env: dict[str, str] | None = None) -> None:
    """Run `docs-assistant ARGS` in the shared stage environment, synced from uv.lock first (a no-op when current)."""
    location = STAGES_ENV.resolve()
    groups = (f"--group={g}" for g in STAGE_GROUPS)
    sync = ["uv", "sync", "--frozen", "--no-default-groups", *groups, "--python", sys.executable]
    session.run(*sync, env={"UV_PROJECT_ENVIRONMENT": str(location)}, silent=True)
    scripts = location / ("Scripts" if sys.platform == "win32" else "bin")
    session.run(str(scripts / "docs-assistant"), *args, env=OFFLINE | (env or {}))


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    install_locked(session, "lint", only=True)
    session.run("ruff", "check", *(session.posargs or ["."]))
    session.run("ruff", "format", "--check", ".")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, built strictly into reports/docs/ (`-- serve` previews it with live reload)."""
    install_locked(session, "docs", only=True)
    session.run("mkdocs", *(session.posargs or ["build"]), "--strict", env={"NO_MKDOCS_2_WARNING": "1"})


#: two pytest workers, one work unit (tests/conftest.py: a module) at a time: the suite waits on containers, act and
#: load tests about half its time; `-- -n 0` runs it in one process
PYTEST_WORKERS = ("--numprocesses=2", "--dist=loadscope", "--no-loadscope-reorder")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests on the real LanceDB, embedder and tiny model."""
    install_locked(session, "test")
    session.run("pytest", *PYTEST_WORKERS, *session.posargs, env=OFFLINE)


# Stage sessions are `venv_backend="none"`: they run in STAGES_ENV, which `stage` syncs, not in one venv each.
# None `requires` another: each reads what the earlier stages recorded (the feature store, the index, the
# registry) and refuses, naming the session to run, when a record is missing. Only `pipeline` chains them;
# run a chain yourself with `nox -x -s validate_data index eval_prompts` (-x stops at the first failure).
@nox.session(venv_backend="none")
def validate_data(session: nox.Session) -> None:
    """Clean and validate data/, quarantine bad rows, ingest the valid ones only if the gate passes."""
    stage(session, "validate", *session.posargs)


@nox.session(venv_backend="none")
def index(session: nox.Session) -> None:
    """Embed changed documents of the validated feature store into the vector index."""
    stage(session, "index")


@nox.session(venv_backend="none")
def eval_prompts(session: nox.Session) -> None:
    """Prompt evals: every suite and prompt variant, gated on thresholds and the baseline (`-- --suites safety`)."""
    stage(session, "eval", *session.posargs)


if FINETUNING:

    @nox.session(venv_backend="none", default=False)
    def finetune(session: nox.Session) -> None:
        """LoRA fine-tune, evaluate against base and champion, register in MLflow (`-- --overrides '{"max_steps": 5}'`)."""
        stage(session, "finetune", *session.posargs)


@nox.session(venv_backend="none", default=False)
def release(session: nox.Session) -> None:
    """Snapshot the recorded index, evals and champion: next version, changelog, tag, manifest (`-- --dry-run`)."""
    stage(session, "release", *session.posargs)


@nox.session(venv_backend="none", default=False)
def build_image(session: nox.Session) -> None:
    """Build the image with the adapter the release manifest pins (trains nothing); push it when a registry is set."""
    stage(session, "image", "build", *session.posargs)


#: what `pipeline` runs for each stage session, in order; `-- --until SESSION` stops after that one
PIPELINE: dict[str, tuple[str, ...]] = {
    "validate_data": ("validate",),
    "index": ("index",),
    "eval_prompts": ("eval",),
    **({"finetune": ("finetune",)} if FINETUNING else {}),
    "release": ("release", "--dry-run"),  # a pipeline previews: it never commits or tags; `nox -s release` does
    "build_image": ("image", "build"),
    "deploy": ("deploy", "dev", "--promote"),
}


def pipeline_until(session: nox.Session) -> str:
    """The last stage to run: `-- --until finetune` (or `--until=finetune`) stops before the Docker stages."""
    args = "=".join(session.posargs).split("=") if session.posargs else ["--until", list(PIPELINE)[-1]]
    if len(args) != 2 or args[0] != "--until" or args[1] not in PIPELINE:
        session.error(
            f"pipeline takes `-- --until SESSION` with SESSION one of {', '.join(PIPELINE)}; got {session.posargs}"
        )
    return args[1]


def docker_unreachable() -> str | None:
    """Why the Docker Engine (DOCKER_HOST, else the local socket) cannot be reached; None if it can or if unsure.

    Checked with the standard library before any install, so a machine without Docker hears it at once.
    """
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    url = urlsplit(host)
    try:
        if url.scheme == "unix":
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(3)
                sock.connect(url.path)
        elif url.scheme == "tcp":
            socket.create_connection((url.hostname or "localhost", url.port or 2375), timeout=3).close()
    except OSError as exc:
        return f"no Docker Engine reachable at {host} ({exc.strerror or exc})"
    return None  # ssh:// and others: the stages' own client checks


@nox.session(venv_backend="none")
def pipeline(session: nox.Session) -> None:
    """Every stage in order, up to the first failure (`-- --until finetune` stops there), then sample answers."""
    until = pipeline_until(session)
    names = list(PIPELINE)
    run, skipped = names[: names.index(until) + 1], names[names.index(until) + 1 :]
    without = f"./noxw -s pipeline -- --until {names[names.index('build_image') - 1]}"
    if "build_image" in run and (problem := docker_unreachable()):
        session.error(f"pipeline: build_image and deploy need Docker: {problem}; start it, or run without: {without}")
    stage(session, "preflight", *run, "--without", without)  # the engine, base image, swarm, ports; nothing ran yet
    for name in run:
        session.log(f"pipeline: {name}")
        try:
            stage(session, *PIPELINE[name], env=local_api_key() if name == "deploy" else None)
        except nox.command.CommandFailed:
            not_run = ", ".join(names[names.index(name) + 1 :]) or "nothing"
            session.error(f"pipeline: {name} failed (its error is above); not run: {not_run}")
    if skipped:
        session.log(f"pipeline: stopped after {until} (--until); not run: {', '.join(skipped)}")
        return
    stage(session, "retrieval-eval")  # the whole chain ran: show what the deployed build answers with
    stage(session, "ask", "--sample", os.environ.get("SAMPLE_QUESTIONS", "3"))


def local_api_key() -> dict[str, str]:
    """On a laptop, one bearer key for the environments that require keys, kept in var/ (not committed).

    The deploy creates each missing Docker secret from the same-named variable and the gate sends the key;
    CI sets both from GitHub environment secrets instead, and then this key is not made.
    """
    given = os.environ.get("LOADTEST_API_KEY") or os.environ.get("DOCS_ASSISTANT_SERVE__API_KEYS")
    if given or os.environ.get("DEPLOY_LOCAL_API_KEY") == "0":  # never replace keys CI (deploy.yml) hands over
        return {}
    path = Path("var/deploy-api-key")
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24), encoding="utf-8")
    key = path.read_text(encoding="utf-8").strip()
    return {"LOADTEST_API_KEY": key, "DOCS_ASSISTANT_SERVE__API_KEYS": json.dumps([key])}


@nox.session(venv_backend="none", default=False)
def deploy(session: nox.Session) -> None:
    """Deploy the manifest's image to dev, promote it on each passed load-test gate (`-- prod --promote --approve`)."""
    stage(session, "deploy", *(session.posargs or ["dev", "--promote"]), env=local_api_key())


@nox.session(venv_backend="none", default=False)
def down(session: nox.Session) -> None:
    """Remove what the deploys left: services, proxies, secrets, networks (`-- dev --images --leave-swarm`)."""
    stage(session, "env", "down", *(session.posargs or ["--all"]))


@nox.session(venv_backend="none", default=False)
def drift(session: nox.Session) -> None:
    """Compare a live environment with its file (`-- prod [--image REF]`); exit 1 listing the differences."""
    stage(session, "drift", *(session.posargs or ["dev"]))


@nox.session(venv_backend="none", default=False)
def loadtest(session: nox.Session) -> None:
    """Locust against a deployed service, gated on its environment's SLOs (`-- --url URL --gate-file FILE`)."""
    stage(session, "loadtest", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Performance suite: ratios against a peer measured in the same run, written to reports/bench/."""
    install_locked(session, "bench")
    session.run("python", "-m", "benchmarks", *session.posargs, env=OFFLINE)


@nox.session(venv_backend="none", default=False)
def serve(session: nox.Session) -> None:
    """Run the model service on loopback (`-- --host 0.0.0.0 --port 8080` to change)."""
    stage(session, "serve", *session.posargs)
