"""The swarm deploy target on the real engine: tiny stdlib test images behind the front proxy.

One environment lives through the module, in order: deploy v1, update to v2 under polling, a crashing and
a never-ready image (swarm rolls both back), a rollback by hand, drift. A poller sends a request every
50 ms during each roll-out; the design's promise is that none fails.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from docs_assistant.cli import app
from docs_assistant.deploy import swarm
from docs_assistant.deploy.environments import load_environment
from docs_assistant.deploy.promote import deploy_gated
from docs_assistant.errors import DeployError

from .conftest import BASE_IMAGE, free_port

pytestmark = pytest.mark.docker

SERVER = """
import json, os, signal, socket, sys, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
VERSION, MODE = os.environ["APP_VERSION"], os.environ["APP_MODE"]
if MODE == "crash":
    print("crashing at start", flush=True); sys.exit(3)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 ignores SIGTERM without a handler
START = time.monotonic()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        ready = MODE != "never-ready" and time.monotonic() - START > 1
        if self.path == "/readyz" and not ready:
            code, body = 503, b"not ready"
        else:
            secrets = sorted(os.listdir("/run/secrets")) if os.path.isdir("/run/secrets") else []
            env = os.environ.get("DOCS_ASSISTANT_SERVE__ENVIRONMENT")
            code, body = 200, json.dumps({"version": VERSION, "secrets": secrets, "env": env}).encode()
        self.send_response(code); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def do_POST(self):  # the load test's POST /v1/answer: the same answer, after reading the body
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/v1/feedback":  # as the app does in the image: a line in a file of this replica's own
            row = dict(json.loads(body), version=VERSION)
            with open(f"/app/feedback/{socket.gethostname()}.jsonl", "a") as log:
                log.write(json.dumps(row) + "\\n")
            self.send_response(201); self.send_header("Content-Length", "0"); self.end_headers()
            return
        self.do_GET()
    def log_message(self, *a): pass
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
"""

DOCKERFILE = f"""FROM {BASE_IMAGE}
ARG APP_VERSION=v1
ARG APP_MODE=ok
ENV APP_VERSION=$APP_VERSION APP_MODE=$APP_MODE PYTHONUNBUFFERED=1
COPY server.py /server.py
# like the app image: the package (here only its proxy module) importable, the server as the entrypoint
COPY pkg/ /pkg/
ENV PYTHONPATH=/pkg
RUN install -d -o 10001 -g 0 -m 0750 /app/feedback
USER 10001
HEALTHCHECK --interval=5s --timeout=3s --retries=3 CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
ENTRYPOINT ["python3", "/server.py"]
"""

PROXY_DOCKERFILE = f"""FROM {BASE_IMAGE}
COPY proxy.py /proxy.py
USER 10001
CMD ["python3", "/proxy.py"]
"""

GATE = """
[gate]
max_startup_s = 6
p50_ms = 2000
p95_ms = 5000
p99_ms = 8000
max_error_rate = 0.01
arrival_rate = 2
min_rps = 1
duration_s = 10
warmup_s = 1
"""


def env_text(
    port: int, secret: str | None, *, stage: str = "dev", replicas: int = 2, gate: str = GATE, promotes_to: str = ""
) -> str:
    secrets = f'DOCS_ASSISTANT_SERVE__API_KEYS = "{secret}"' if secret else ""
    promotion = f'promotes_to = "{promotes_to}"' if promotes_to else ""
    return f"""target = "docker"
replicas = {replicas}
port = {port}
{promotion}

[resources]
cpus = 0.5
memory = "128m"

[config]
DOCS_ASSISTANT_SERVE__ENVIRONMENT = "{stage}"

[secrets]
{secrets}
{gate}"""


@dataclass
class Stack:
    client: Any
    directory: Path
    name: str
    prefix: str
    port: int
    images: dict[str, str]
    proxy_image: str
    secret: str
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def env(self) -> Any:
        return load_environment(self.name, self.directory)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/answer"


def answer(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


class Poller:
    """GET the URL every 50 ms in a thread; counts failures and the versions that answered."""

    def __init__(self, url: str) -> None:
        self.url, self.ok, self.failed, self.versions, self.errors = url, 0, 0, {}, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                version = answer(self.url)["version"]
                self.versions[version] = self.versions.get(version, 0) + 1
                self.ok += 1
            except Exception as exc:
                self.failed += 1
                self.errors.append(repr(exc)[:120])
            self._stop.wait(max(0.0, 0.05 - (time.monotonic() - started)))

    def stop(self) -> Poller:
        time.sleep(1)
        self._stop.set()
        self._thread.join(timeout=10)
        return self


@pytest.fixture(scope="module")
def stack(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prefix = f"da-test-{secrets.token_hex(3)}"
    name = "t" + prefix.removeprefix("da-test-")
    context = tmp_path_factory.mktemp("swarm-images")
    (context / "server.py").write_text(SERVER, encoding="utf-8")
    (context / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
    package = context / "pkg" / "docs_assistant" / "deploy"
    package.mkdir(parents=True)
    for init in (package.parent / "__init__.py", package / "__init__.py"):
        init.write_text("", encoding="utf-8")
    shutil.copy(Path(swarm.__file__).with_name("proxy.py"), package / "proxy.py")
    proxy_context = tmp_path_factory.mktemp("swarm-proxy")
    shutil.copy(Path(swarm.__file__).with_name("proxy.py"), proxy_context / "proxy.py")
    (proxy_context / "Dockerfile").write_text(PROXY_DOCKERFILE, encoding="utf-8")
    directory = tmp_path_factory.mktemp("environments")
    port = free_port()
    secret = f"{prefix}-api-keys"
    made_images: list[str] = []
    env = None
    try:
        images = {}
        for version, mode in (("v1", "ok"), ("v2", "ok"), ("crash", "crash"), ("never-ready", "never-ready")):
            tag = f"{prefix}-app:{version}"
            docker_client.images.build(
                path=str(context), tag=tag, buildargs={"APP_VERSION": version, "APP_MODE": mode}, rm=True
            )
            made_images.append(tag)
            images[version] = tag
        proxy_image = f"{prefix}-proxy:1"
        docker_client.images.build(path=str(proxy_context), tag=proxy_image, rm=True)
        made_images.append(proxy_image)
        (directory / f"{name}.toml").write_text(env_text(port, secret), encoding="utf-8")
        env = load_environment(name, directory)
        swarm.ensure_swarm(docker_client, env)  # secrets live in the swarm: a fresh engine is not in it yet
        docker_client.secrets.create(name=secret, data=b'["test-key"]\n', labels={"da-test": prefix})
        yield Stack(docker_client, directory, name, prefix, port, images, proxy_image, secret)
    finally:
        if env is not None:
            swarm.remove(env, client=docker_client, feedback=True)
        for found in docker_client.secrets.list(filters={"name": secret}):
            if found.name == secret:
                found.remove()
        for tag in made_images:
            docker_client.images.remove(tag, force=True)


def test_deploy_serves_v1_through_the_proxy(stack: Stack) -> None:
    result = swarm.deploy(
        stack.env, stack.images["v1"], client=stack.client, proxy_image=stack.proxy_image,
        directory=stack.directory, monitor_s=2,
    )  # fmt: skip
    stack.results["v1"] = result
    assert result.state == "deployed", result
    assert result.previous_image is None
    assert result.startup_s is not None
    assert result.startup_s > 0
    assert result.url == f"http://127.0.0.1:{stack.port}"
    body = answer(stack.url)
    assert body == {"version": "v1", "secrets": ["DOCS_ASSISTANT_SERVE__API_KEYS"], "env": "dev"}
    assert swarm.drift(stack.env, stack.client, image=stack.images["v1"]) == []
    live = swarm.status(stack.env, stack.client)
    assert live["app"]["running"] == 2
    assert live["proxy"]["running"] == 1


def test_update_to_v2_loses_no_request(stack: Stack) -> None:
    poller = Poller(stack.url)
    time.sleep(1)
    result = swarm.deploy(stack.env, stack.images["v2"], client=stack.client, directory=stack.directory, monitor_s=2)
    poller.stop()
    stack.results["v2"] = (result, poller)
    assert result.state == "deployed", result
    assert result.previous_image == stack.images["v1"]
    assert poller.failed == 0, poller.errors
    assert set(poller.versions) == {"v1", "v2"}
    assert answer(stack.url)["version"] == "v2"


def test_crashing_image_is_rolled_back_and_the_cli_exits_1(stack: Stack, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCS_ASSISTANT_PATHS__REPORTS_DIR", str(tmp_path / "reports"))
    poller = Poller(stack.url)
    time.sleep(1)
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"version": "1.0.0", "git_sha": "0123abc"}', encoding="utf-8")
    command = ["deploy", stack.name, "--image", stack.images["crash"], "--dir", str(stack.directory)]
    run = CliRunner().invoke(app, [*command, "--manifest", str(manifest)])
    poller.stop()
    assert run.exit_code == 1, run.output
    summary = json.loads((tmp_path / "reports" / "deploy" / stack.name / "summary.json").read_text())
    stack.results["crash"] = (summary, poller)
    assert summary["state"] == "failed"
    assert summary["deploy"]["state"] == "rolled_back"
    recorded = json.loads(manifest.read_text())
    assert recorded["deploys"][stack.name]["state"] == "rolled_back"
    assert recorded["gates"][stack.name]["passed"] is False
    assert recorded["gates"][stack.name]["failed"] == ["startup_s"]  # the startup gate failed: no load test ran
    assert "crash: task: non-zero exit (3)" in summary["deploy"]["message"]
    assert "promotion stopped" in run.output
    assert poller.failed == 0, poller.errors
    assert set(poller.versions) == {"v2"}
    assert swarm.drift(stack.env, stack.client, image=stack.images["v2"]) == []


def test_never_ready_image_fails_the_startup_gate_and_is_rolled_back(stack: Stack, tmp_path: Path) -> None:
    poller = Poller(stack.url)
    step = deploy_gated(
        stack.env, stack.images["never-ready"], client=stack.client, directory=stack.directory,
        reports_dir=tmp_path, monitor_s=2,
    )  # fmt: skip
    poller.stop()
    result = step.deploy
    stack.results["never-ready"] = (result, poller)
    assert step.state == "failed"
    assert step.gate["failed"] == ["startup_s"]
    assert result["state"] == "rolled_back", result
    assert "never healthy" in result["message"] or "unhealthy" in result["message"]
    assert poller.failed == 0, poller.errors
    assert set(poller.versions) == {"v2"}


def rate(stack: Stack, answer_id: str) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.port}/v1/feedback", data=json.dumps({"answer_id": answer_id, "rating": 1}).encode()
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201


def test_rollback_by_hand_returns_to_the_image_before(stack: Stack) -> None:
    rate(stack, "before-rollback")  # kept on the environment's volume through the roll-back (next test)
    # the automatic rollbacks restored v2's spec, whose label records v1 as the image before it
    poller = Poller(stack.url)
    result = swarm.rollback(stack.env, client=stack.client, directory=stack.directory, monitor_s=2)
    poller.stop()
    stack.results["rollback"] = (result, poller)
    assert result.state == "rolled_back", result
    assert result.image == stack.images["v1"]
    assert result.previous_image == stack.images["v2"]
    assert poller.failed == 0, poller.errors
    assert answer(stack.url)["version"] == "v1"


def test_feedback_outlives_a_deploy_on_the_read_only_root_and_env_feedback_exports_it(
    stack: Stack, tmp_path: Path
) -> None:
    rate(stack, "after-rollback")
    out = tmp_path / "data" / "feedback"
    run = CliRunner().invoke(app, ["env", "feedback", stack.name, "--dir", str(stack.directory), "--out", str(out)])
    assert run.exit_code == 0, run.output
    files = sorted(out.glob("*.jsonl"))
    assert files, run.output
    assert all(f.name.startswith(f"{stack.name}-") for f in files)  # one per replica that took a rating
    rows = [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    # rated under v2 before the roll-back deployed v1, and under v1 after it: one volume, both rows
    assert {(r["answer_id"], r["version"]) for r in rows} == {("before-rollback", "v2"), ("after-rollback", "v1")}
    assert f"env feedback {stack.name}: 2 rows in {len(files)} files" in run.output
    # the root stays read-only: the volume is the one writable place besides /tmp
    service = stack.client.services.get(f"docs-assistant-{stack.name}")
    container_spec = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert container_spec["ReadOnly"] is True
    assert {m["Target"]: m["Type"] for m in container_spec["Mounts"]} == {"/tmp": "tmpfs", "/app/feedback": "volume"}


# p50 below what any service achieves; startup includes swarm's 10 s monitor between the two replicas
TIGHT_GATE = GATE.replace("p50_ms = 2000", "p50_ms = 0.01").replace("max_startup_s = 6", "max_startup_s = 40")


def test_gated_deploy_passes_then_a_too_tight_gate_rolls_back_and_stops_promotion(
    stack: Stack, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("DOCS_ASSISTANT_PATHS__REPORTS_DIR", str(tmp_path / "reports"))
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"version": "1.0.0", "git_sha": "0123abc"}', encoding="utf-8")
    path, following = stack.directory / f"{stack.name}.toml", f"{stack.name}-next"
    (stack.directory / f"{following}.toml").write_text(env_text(free_port(), None, replicas=1), encoding="utf-8")
    base = ["deploy", stack.name, "--dir", str(stack.directory), "--manifest", str(manifest)]

    # the live image again (v1, after the rollback by hand): nothing starts, the load test runs and passes
    passed = CliRunner().invoke(app, [*base, "--image", stack.images["v1"]])
    assert passed.exit_code == 0, passed.output
    gate = json.loads(manifest.read_text())["gates"][stack.name]
    assert gate["passed"] is True, gate
    assert gate["measured"]["requests"] > 0
    assert gate["measured"]["p50_ms"] > gate["gate"]["p50_ms"] / 1000  # measured, not a placeholder

    path.write_text(env_text(stack.port, stack.secret, gate=TIGHT_GATE, promotes_to=following), encoding="utf-8")
    poller = Poller(stack.url)
    time.sleep(1)
    failed = CliRunner().invoke(app, [*base, "--image", stack.images["v2"], "--promote"])
    poller.stop()
    stack.results["tight-gate"] = (failed.output[-600:], poller)
    assert failed.exit_code == 1, failed.output
    recorded = json.loads(manifest.read_text())
    assert recorded["gates"][stack.name]["passed"] is False
    assert recorded["gates"][stack.name]["failed"] == ["p50_ms"]
    assert recorded["gates"][stack.name]["image"] == stack.images["v2"]
    assert recorded["deploys"][stack.name]["rollback"]["image"] == stack.images["v1"]
    assert following not in recorded["gates"]  # promotion stopped
    assert stack.client.services.list(filters={"name": f"docs-assistant-{following}"}) == []
    assert answer(stack.url)["version"] == "v1"  # back on the previous image
    assert poller.failed == 0, poller.errors  # which served throughout
    assert {"v1", "v2"} <= set(poller.versions)
    path.write_text(env_text(stack.port, stack.secret), encoding="utf-8")


def test_drift_lists_live_changes_and_file_changes(stack: Stack) -> None:
    assert swarm.drift(stack.env, stack.client, image=stack.images["v1"]) == []
    differences = swarm.drift(stack.env, stack.client, image=stack.images["v2"])
    assert differences == [f"image: {stack.images['v1']} runs, {stack.images['v2']} expected"]
    stack.client.services.get(f"docs-assistant-{stack.name}").scale(3)
    path = stack.directory / f"{stack.name}.toml"
    path.write_text(env_text(stack.port + 1, stack.secret, stage="staging"), encoding="utf-8")
    differences = swarm.drift(stack.env, stack.client)
    assert "replicas: 3 live, 2 in the file" in differences
    assert "config.DOCS_ASSISTANT_SERVE__ENVIRONMENT: live DOCS_ASSISTANT_SERVE__ENVIRONMENT='dev', file 'staging'" in (
        differences
    )
    assert f"port: the proxy publishes [{stack.port}], the file says {stack.port + 1}" in differences
    run = CliRunner().invoke(app, ["drift", stack.name, "--dir", str(stack.directory)])
    assert run.exit_code == 1
    assert "drift " + stack.name + ": replicas: 3 live, 2 in the file" in run.output


def test_missing_docker_secret_names_the_field(stack: Stack) -> None:
    name = stack.name + "-nosecret"
    missing = f"{stack.prefix}-missing"
    (stack.directory / f"{name}.toml").write_text(env_text(free_port(), missing), encoding="utf-8")
    env = load_environment(name, stack.directory)
    with pytest.raises(DeployError) as err:
        swarm.deploy(env, stack.images["v1"], client=stack.client, directory=stack.directory)
    text = str(err.value)
    assert str(stack.directory / f"{name}.toml") in text
    assert "secrets.DOCS_ASSISTANT_SERVE__API_KEYS" in text
    assert f"docker secret create {missing} -" in text
    assert stack.client.services.list(filters={"name": f"docs-assistant-{name}"}) == []
    assert stack.client.networks.list(names=[f"docs-assistant-{name}"]) == []


def test_the_app_image_runs_the_proxy_by_default(stack: Stack) -> None:
    # no proxy_image: the proxy service runs the app image with `python3 -m docs_assistant.deploy.proxy`
    name = stack.name + "-own"
    (stack.directory / f"{name}.toml").write_text(env_text(free_port(), None, replicas=1), encoding="utf-8")
    env = load_environment(name, stack.directory)
    try:
        result = swarm.deploy(env, stack.images["v2"], client=stack.client, directory=stack.directory, monitor_s=1)
        assert result.state == "deployed", result
        assert answer(result.url + "/v1/answer") == {"version": "v2", "secrets": [], "env": "dev"}
        proxy = stack.client.services.get(f"docs-assistant-{name}-proxy").attrs["Spec"]["TaskTemplate"]
        assert proxy["ContainerSpec"]["Image"] == stack.images["v2"]
        assert proxy["ContainerSpec"]["Command"] == ["python3", "-m", "docs_assistant.deploy.proxy"]
    finally:
        swarm.remove(env, client=stack.client, feedback=True)


def other_local_addresses() -> list[str]:
    """This machine's IPv4 addresses besides loopback (eth0, docker0, docker_gwbridge): `hostname -I`."""
    found = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True).stdout.split()
    addresses = [a for a in found if ipaddress.ip_address(a).version == 4 and not ipaddress.ip_address(a).is_loopback]
    assert addresses, f"hostname -I lists no address besides loopback: {found}"
    return addresses


def accepts(address: str, port: int) -> bool:
    """Whether something accepts a TCP connection on address:port (a refusal or a timeout: no)."""
    try:
        socket.create_connection((address, port), timeout=2).close()
    except OSError:
        return False
    return True


def leftovers(client: Any, prefix: str) -> list[str]:
    """Services, containers, secrets and networks whose name starts with `prefix`."""
    found = [f"service {s.name}" for s in client.services.list() if s.name.startswith(prefix)]
    # sparse: no inspect per container, which races other tests' removals
    containers = [c.attrs["Names"][0].lstrip("/") for c in client.containers.list(all=True, sparse=True)]
    found += [f"container {c}" for c in containers if c.startswith(prefix)]
    found += [f"secret {s.name}" for s in client.secrets.list() if s.name.startswith(prefix)]
    return found + [f"network {n.name}" for n in client.networks.list() if n.name.startswith(prefix)]


def test_a_live_proxy_on_other_addresses_than_the_file_stops_the_deploy_before_any_change(stack: Stack) -> None:
    # the stack's proxy is a service on every address; the file now says loopback only
    path = stack.directory / f"{stack.name}.toml"
    loopback = env_text(stack.port, stack.secret).replace("replicas = 2", 'replicas = 2\nbind = "127.0.0.1"')
    path.write_text(loopback, encoding="utf-8")
    before = stack.client.services.get(f"docs-assistant-{stack.name}").attrs["Version"]
    try:
        with pytest.raises(DeployError) as err:
            swarm.deploy(stack.env, stack.images["v2"], client=stack.client, directory=stack.directory)
        text = str(err.value)
        assert text.startswith(
            f"{path}: bind: the live proxy service docs-assistant-{stack.name}-proxy publishes on 0.0.0.0"
        )
        assert f"docker service rm docs-assistant-{stack.name}-proxy" in text
        assert stack.client.services.get(f"docs-assistant-{stack.name}").attrs["Version"] == before
        diffs = swarm.drift(stack.env, stack.client)
        assert "bind: the proxy service publishes on 0.0.0.0, the file says 127.0.0.1" in diffs
    finally:
        path.write_text(env_text(stack.port, stack.secret), encoding="utf-8")


def test_loopback_bind_answers_on_127_0_0_1_only_and_env_down_removes_everything(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, name = stack.client, stack.name + "-down"
    prefix = f"docs-assistant-{name}"
    handmade = f"{stack.prefix}-handmade"  # named by the file, made by hand: down keeps it
    directory = tmp_path / "environments"
    directory.mkdir()
    text = env_text(free_port(), f"{prefix}-api-keys", replicas=1).replace(
        "replicas = 1", 'replicas = 1\nbind = "127.0.0.1"'
    )
    text = text.replace("[secrets]", f'[secrets]\nHANDMADE = "{handmade}"')
    (directory / f"{name}.toml").write_text(text, encoding="utf-8")
    env = load_environment(name, directory)
    # an image that carries this project's OCI title, as `image build` makes them: --images deletes it whole
    base = client.containers.create(stack.images["v1"])
    ours = base.commit(f"{stack.prefix}-ours", "1", changes=[f"LABEL org.opencontainers.image.title={swarm.APP}"])
    base.remove()
    ours.tag(f"{stack.prefix}-ours", "another-tag")
    client.secrets.create(name=handmade, data=b"kept\n")
    monkeypatch.setenv("DOCS_ASSISTANT_SERVE__API_KEYS", '["down-key"]')  # the deploy creates the secret from it
    try:
        result = swarm.deploy(env, f"{stack.prefix}-ours:1", client=client, directory=directory, monitor_s=1)
        assert result.state == "deployed", result
        assert result.url == f"http://127.0.0.1:{env.port}"
        assert answer(result.url + "/v1/answer")["version"] == "v1"
        assert swarm.drift(env, client, image=f"{stack.prefix}-ours:1") == []
        assert swarm.status(env, client)["proxy"]["bind"] == "127.0.0.1"
        assert {env.port, stack.port} <= swarm.published_ports(client)  # what preflight counts as ours
        made = {f"container {prefix}-proxy", f"network {prefix}", f"secret {prefix}-api-keys", f"service {prefix}"}
        assert made <= set(leftovers(client, prefix))  # and the app task's container, docs-assistant-<env>.1.<id>
        for address in other_local_addresses():
            assert accepts(address, stack.port), f"{address}:{stack.port}: the 0.0.0.0 proxy should answer there"
            assert not accepts(address, env.port), f"{address}:{env.port} accepts: bind 127.0.0.1 is not loopback only"

        down = CliRunner().invoke(
            app, ["env", "down", name, "--dir", str(directory), "--images", "--leave-swarm"], catch_exceptions=False
        )
        assert down.exit_code == 0, down.output
        lines = down.output.splitlines()
        for removed in (
            f"container {prefix}-proxy",
            f"service {prefix}",
            f"secret {prefix}-api-keys",
            f"network {prefix}",
        ):
            assert f"env {name}: removed {removed}" in lines, down.output
        assert (
            f"env {name}: kept secret {handmade} (secrets.HANDMADE: made outside the deploy; `docker secret rm {handmade}`)"
            in lines
        )
        kept_feedback = (
            f"env {name}: kept volume {prefix}-feedback (users' feedback: `docs-assistant env feedback {name}` exports "
            f"it; `env down {name} --feedback` deletes it)"
        )
        assert kept_feedback in lines, down.output  # nothing users said is deleted without being asked
        assert any(line.startswith(f"removed image {stack.prefix}-ours:1 ({ours.short_id}, ") for line in lines), (
            down.output
        )
        assert lines[-1].startswith("swarm: not left, it still holds "), down.output  # the stack's services remain
        assert f"service docs-assistant-{stack.name}" in lines[-1]
        assert leftovers(client, prefix) == []
        assert client.images.list(filters={"reference": f"{stack.prefix}-ours"}) == []
        assert not accepts("127.0.0.1", env.port)
        assert client.info()["Swarm"]["LocalNodeState"] == "active"

        again = CliRunner().invoke(app, ["env", "down", "--all", "--dir", str(directory)], catch_exceptions=False)
        assert again.exit_code == 0, again.output
        assert again.output.splitlines() == [
            f"env {name}: kept secret {handmade} (secrets.HANDMADE: made outside the deploy; `docker secret rm {handmade}`)",
            kept_feedback,
            f"env {name}: nothing left to remove (no service, proxy, secret or network of it)",
        ]
        # the service and our image are gone; any image the engine holds reads the kept volume
        export = ["env", "feedback", name, "--dir", str(directory), "--out", str(tmp_path / "feedback")]
        exported = CliRunner().invoke(app, [*export, "--image", stack.images["v1"]])
        assert exported.exit_code == 0, exported.output
        assert f"env feedback {name}: no feedback yet" in exported.output
        deleted = CliRunner().invoke(app, ["env", "down", name, "--feedback", "--dir", str(directory)])
        assert f"env {name}: removed volume {prefix}-feedback" in deleted.output.splitlines(), deleted.output
        assert client.volumes.list(filters={"name": f"{prefix}-feedback"}) == []
    finally:
        swarm.remove(env, client=client, feedback=True)
        for secret in client.secrets.list(filters={"name": handmade}):
            secret.remove()
        for image in client.images.list(filters={"reference": f"{stack.prefix}-ours"}):
            client.images.remove(image.id, force=True)


def test_report(stack: Stack) -> None:
    """Not a check: prints what the roll-outs measured (pytest -s shows it)."""
    for key, value in stack.results.items():
        print(
            key, value if not isinstance(value, tuple) else (value[0], vars(value[1]) | {"errors": value[1].errors[:3]})
        )
