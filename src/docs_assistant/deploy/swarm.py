"""The Docker swarm target of the deploy stage: an environment file made into two services.

Per environment `<env>`: an attachable overlay network `docs-assistant-<env>`; the app service
`docs-assistant-<env>` (DNS round robin, no published port, start-first rolling updates that swarm rolls
back by itself when a new task crashes or never gets healthy); and the front proxy
`docs-assistant-<env>-proxy`, which publishes the environment's port and forwards each connection to a
healthy app task (`proxy.py`). The proxy is created once and never updated by a deploy, because an update
of a published port is a short outage. Without IPVS (no routing mesh, no VIP) this is what gives zero
failed requests during an update on one node; docs/promotion/swarm.md has the design and the
measurements.

The file's `bind` decides what the proxy is. On every address (`0.0.0.0`, staging and prod) it is a swarm
service publishing in host mode. Swarm cannot publish on one address (a service's published port takes no
host IP), so a proxy that must answer on `127.0.0.1` only (dev, which takes no API key) is a plain
container on the same attachable network, `--restart unless-stopped`, its port bound to that address the
way `docker run -p 127.0.0.1:PORT:8000` binds it: nothing listens on the host's other addresses.

Secrets: each `[secrets]` entry `VAR = "name"` mounts the Docker secret `name` at `/run/secrets/VAR`; the
app's settings read such files as the variable's value (`config.SecretFilesSource`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from docs_assistant.deploy.environments import (
    ALL_ADDRESSES,
    ENVIRONMENTS_DIR,
    LOOPBACK_ELSEWHERE,
    Environment,
    engine_url,
    remote_host,
)
from docs_assistant.errors import DeployError
from docs_assistant.serve.feedback_log import IMAGE_DIR as FEEDBACK_DIR

APP = "docs-assistant"
APP_PORT = 8000  # the port the app (and the proxy, inside its container) listens on
LABEL = "io.docs-assistant"
LABEL_ENVIRONMENT = f"{LABEL}.environment"
LABEL_PREVIOUS = f"{LABEL}.previous-image"
LABEL_ROLE = f"{LABEL}.role"
SECRETS_DIR = "/run/secrets"
MONITOR_S = 10.0  # after a new task is healthy, how long swarm watches it before the next one
HEALTH_INTERVAL_S, HEALTH_TIMEOUT_S, HEALTH_RETRIES = 5, 3, 3  # tolerant: a busy CPU must not kill a healthy task
NS = 1_000_000_000
DONE = ("completed", "rollback_completed", "paused", "rollback_paused")
READYZ = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{APP_PORT}/readyz', timeout=2)"
LISTENING = f"import socket; socket.create_connection(('127.0.0.1', {APP_PORT}), 2).close()"


@dataclass
class DeployResult:
    """What one deploy or rollback did; `state` is deployed, rolled_back or failed."""

    environment: str
    image: str
    previous_image: str | None
    state: str
    startup_s: float | None
    url: str
    message: str
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        startup = f", startup {self.startup_s:.1f} s" if self.startup_s is not None else ""
        return f"deploy {self.environment}: {self.state} {self.image} at {self.url}{startup} ({self.message})"


def names(env: Environment) -> tuple[str, str, str]:
    """(network, app service, proxy service or container) of an environment."""
    app = f"{APP}-{env.name}"
    return app, app, f"{app}-proxy"


def feedback_volume(env: Environment) -> str:
    """The environment's volume at the image's feedback directory: it outlives deploys, rollbacks and `env down`."""
    return f"{names(env)[1]}-feedback"


def url_of(env: Environment) -> str:
    """Where the proxy's port answers: its `bind` address when that is one address, else the host of the engine
    (`docker_host`, else $DOCKER_HOST) when that is another machine, else loopback."""
    host = env.bind if not env.binds_all_addresses else remote_host(engine_url(env)) or "127.0.0.1"
    return f"http://[{host}]:{env.port}" if ":" in host else f"http://{host}:{env.port}"


def env_file(env: Environment, directory: Path = ENVIRONMENTS_DIR) -> Path:
    return directory / f"{env.name}.toml"


def client_for(env: Environment) -> Any:
    """A client of `env.docker_host` when the file sets one, else of $DOCKER_HOST or the local engine."""
    if env.docker_host is None:
        from docs_assistant.engine import docker_client

        return docker_client()
    import docker
    from docker.errors import DockerException

    try:
        client = docker.DockerClient(base_url=env.docker_host, timeout=600)
        client.ping()
    except DockerException as err:
        raise DeployError(
            f"docker_host: no Docker Engine reachable at {env.docker_host}: {err}",
            where=env_file(env),
            hint="check the URL and that you can run `docker -H URL info`",
        ) from err
    return client


def ensure_swarm(client: Any, env: Environment) -> None:
    """Initialise swarm mode (single manager, advertised on loopback) on an engine that is not in it."""
    from docker.errors import APIError

    state = client.info().get("Swarm", {})
    if state.get("LocalNodeState") == "active":
        if not state.get("ControlAvailable"):
            raise DeployError(
                "the engine is a swarm worker; services are created on a manager",
                where=f"{env_file(env)}: docker_host",
                hint="point docker_host (or DOCKER_HOST) at a manager node",
            )
        return
    try:
        client.swarm.init(advertise_addr="127.0.0.1")
    except APIError as err:
        raise DeployError(
            f"cannot initialise swarm mode: {err.explanation or err}",
            where=f"{env_file(env)}: target",
            hint="run `docker swarm init --advertise-addr <this host's address>` by hand and deploy again",
        ) from err


def app_service(client: Any, env: Environment) -> Any | None:
    """The environment's app service, or None when nothing is deployed."""
    return _service(client, names(env)[1])


def _service(client: Any, name: str) -> Any | None:
    from docker.errors import NotFound

    try:
        return client.services.get(name)
    except NotFound:
        return None


def _container(client: Any, name: str) -> Any | None:
    from docker.errors import NotFound

    try:
        return client.containers.get(name)
    except NotFound:
        return None


def _network(client: Any, name: str, env: Environment) -> Any:
    found = [n for n in client.networks.list(names=[name]) if n.name == name]
    if found:
        return found[0]
    return client.networks.create(
        name, driver="overlay", attachable=True, scope="swarm", labels={LABEL_ENVIRONMENT: env.name}
    )


def _secret_refs(client: Any, env: Environment, directory: Path) -> list[Any]:
    """References to the environment's Docker secrets; a missing one is created from the same-named
    environment variable when it is set (how CI hands over a GitHub environment secret), else an error."""
    import os

    from docker.types import SecretReference

    refs = []
    for var, secret in sorted(env.secrets.items()):
        found = [s for s in client.secrets.list(filters={"name": secret}) if s.name == secret]
        if not found and os.environ.get(var):
            found = [client.secrets.create(name=secret, data=os.environ[var], labels={LABEL_ENVIRONMENT: env.name})]
        if not found:
            raise DeployError(
                f"secrets.{var}: no Docker secret named {secret!r} on the engine, and ${var} is not set",
                where=env_file(env, directory),
                hint=f"set ${var} to its value (the deploy creates the secret), or create it: "
                f"`printf %s VALUE | docker secret create {secret} -`",
            )
        refs.append(SecretReference(found[0].id, secret, filename=var))
    return refs


def _app_spec(env: Environment, image: str, network_id: str, secrets: list[Any], monitor_s: float) -> dict[str, Any]:
    """The app service's whole spec, the same builder for create and update (so an update changes only what changed)."""
    from docker.types import (
        ContainerSpec,
        EndpointSpec,
        Healthcheck,
        Mount,
        Placement,
        Resources,
        RestartPolicy,
        RollbackConfig,
        ServiceMode,
        TaskTemplate,
        UpdateConfig,
    )

    resources = env.resources
    container = ContainerSpec(
        image,
        env=[f"{key}={value}" for key, value in sorted(env.config.items())],
        secrets=secrets or None,
        healthcheck=Healthcheck(
            test=["CMD", "python3", "-c", READYZ],
            interval=HEALTH_INTERVAL_S * NS,
            timeout=HEALTH_TIMEOUT_S * NS,
            retries=HEALTH_RETRIES,
            start_period=int(env.gate.max_startup_s * NS),
        ),
        stop_grace_period=15 * NS,
        read_only=True,
        mounts=[
            Mount("/tmp", None, type="tmpfs", tmpfs_size=512 << 20),  # noqa: S108 -- a private tmpfs, writable on a read-only root
            # every replica appends feedback here, each to a file of its own (serve/feedback_log.py)
            Mount(
                FEEDBACK_DIR,
                feedback_volume(env),
                type="volume",
                labels={LABEL_ENVIRONMENT: env.name, LABEL_ROLE: "feedback"},
            ),
        ],
    )
    template = TaskTemplate(
        container,
        resources=Resources(
            cpu_limit=int(resources.cpus * NS) if resources and resources.cpus else None,
            mem_limit=resources.memory_bytes if resources else None,
        ),
        restart_policy=RestartPolicy(condition="any", delay=2 * NS, max_attempts=0),
        placement=Placement(),
        networks=[{"Target": network_id}],
    )
    return {
        "task_template": template,
        "mode": ServiceMode("replicated", replicas=env.replicas),
        "update_config": UpdateConfig(
            parallelism=1,
            delay=0,
            order="start-first",
            failure_action="rollback",
            monitor=int(monitor_s * NS),
            max_failure_ratio=0,
        ),
        "rollback_config": RollbackConfig(
            parallelism=1, delay=0, order="start-first", failure_action="pause", monitor=int(monitor_s * NS)
        ),
        "endpoint_spec": EndpointSpec(mode="dnsrr"),
    }


def _ensure_proxy(client: Any, env: Environment, image: str, proxy_image: str | None, network: Any) -> None:
    """Create the proxy if there is none; an existing one is left alone (`drift` reports differences)."""
    if env.binds_all_addresses:
        _ensure_proxy_service(client, env, image, proxy_image, network.id)
    else:
        _ensure_proxy_container(client, env, image, proxy_image, network.name)


def _ensure_proxy_service(client: Any, env: Environment, image: str, proxy_image: str | None, network_id: str) -> Any:
    """The proxy as a swarm service publishing `port` in host mode, which is on every address of the node."""
    from docker.types import EndpointSpec, Healthcheck, ServiceMode

    _, app, proxy = names(env)
    existing = _service(client, proxy)
    if existing is not None:
        return existing
    return client.services.create(
        proxy_image or image,
        name=proxy,
        # the app image's entrypoint serves the app: replace it (swarm's Command is the entrypoint)
        command=None if proxy_image else ["python3", "-m", "docs_assistant.deploy.proxy"],
        env={"BACKEND": f"tasks.{app}:{APP_PORT}", "PORT": str(APP_PORT)},
        networks=[network_id],
        endpoint_spec=EndpointSpec(ports={env.port: (APP_PORT, "tcp", "host")}),
        mode=ServiceMode("replicated", replicas=1),
        healthcheck=Healthcheck(
            test=["CMD", "python3", "-c", LISTENING], interval=2 * NS, timeout=3 * NS, retries=3, start_period=0
        ),
        labels={LABEL_ENVIRONMENT: env.name, LABEL_ROLE: "proxy"},
        stop_grace_period=5 * NS,
        read_only=True,
    )


def _ensure_proxy_container(
    client: Any, env: Environment, image: str, proxy_image: str | None, network_name: str
) -> Any:
    """The proxy as a plain container on the environment's attachable network, `port` bound to `bind` only.

    A swarm service cannot publish on one address; a container can, and the engine restarts it
    (`unless-stopped`) as swarm would restart a task. It runs on the engine's own node, which is the node
    whose address `bind` names.
    """
    _, app, proxy = names(env)
    existing = _container(client, proxy)
    if existing is not None:
        if existing.status != "running":
            existing.start()
        return existing
    return client.containers.run(
        proxy_image or image,
        name=proxy,
        # the app image's entrypoint serves the app: replace it
        entrypoint=None if proxy_image else ["python3", "-m", "docs_assistant.deploy.proxy"],
        environment={"BACKEND": f"tasks.{app}:{APP_PORT}", "PORT": str(APP_PORT)},
        network=network_name,
        ports={f"{APP_PORT}/tcp": (env.bind, env.port)},
        healthcheck={
            "test": ["CMD", "python3", "-c", LISTENING],
            "interval": 2 * NS,
            "timeout": 3 * NS,
            "retries": 3,
            "start_period": 0,
        },
        labels={LABEL_ENVIRONMENT: env.name, LABEL_ROLE: "proxy"},
        restart_policy={"Name": "unless-stopped"},
        stop_signal="SIGTERM",
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        detach=True,
    )


def _live_bind(client: Any, env: Environment) -> tuple[str, str, list[int]] | None:
    """(kind, address, published ports) of the live proxy: a service publishes on every address; None: no proxy."""
    _, _, proxy = names(env)
    service = _service(client, proxy)
    if service is not None:
        ports = [p.get("PublishedPort") for p in service.attrs["Spec"].get("EndpointSpec", {}).get("Ports", [])]
        return "service", ALL_ADDRESSES[0], ports
    container = _container(client, proxy)
    if container is None:
        return None
    bindings = container.attrs["HostConfig"].get("PortBindings") or {}
    published = [b for port in bindings.values() for b in port or []]
    address = (published[0].get("HostIp") or ALL_ADDRESSES[0]) if published else ALL_ADDRESSES[0]
    return "container", address, [int(b["HostPort"]) for b in published]


def published_ports(client: Any) -> set[int]:
    """Host ports the deploys publish on this engine: swarm services' and the loopback proxies' (containers)."""
    ports = set()
    if is_manager(client):
        for service in client.services.list():
            ports |= {
                p["PublishedPort"] for p in service.attrs.get("Endpoint", {}).get("Ports") or [] if "PublishedPort" in p
            }
    for container in client.containers.list(all=True, sparse=True, filters={"label": f"{LABEL_ROLE}=proxy"}):
        ports |= {p["PublicPort"] for p in container.attrs.get("Ports") or [] if "PublicPort" in p}
    return ports


def _bind_differs(live: str, env: Environment) -> bool:
    return (live in ALL_ADDRESSES) != env.binds_all_addresses or (not env.binds_all_addresses and live != env.bind)


def _check_proxy_bind(client: Any, env: Environment, directory: Path) -> None:
    """Refuse to deploy behind a proxy that publishes on other addresses than the file's `bind` (before any change):
    the proxy is never replaced by a deploy, and a dev left on 0.0.0.0 would answer other machines without a key."""
    live = _live_bind(client, env)
    if live is None or not _bind_differs(live[1], env):
        return
    kind, address, _ = live
    _, _, proxy = names(env)
    remove = f"docker service rm {proxy}" if kind == "service" else f"docker rm -f {proxy}"
    raise DeployError(
        f"bind: the live proxy {kind} {proxy} publishes on {address}, the file says {env.bind!r}",
        where=env_file(env, directory),
        hint=f"remove the proxy (`{remove}`, a short outage; the app keeps running) and deploy again",
    )


def _wait_proxy(client: Any, env: Environment, timeout: float) -> tuple[str, str]:
    """Wait for the proxy (service task or container) to be healthy; returns (completed or timeout, message)."""
    _, _, proxy = names(env)
    if env.binds_all_addresses:
        service = client.services.get(proxy)
        state, _, message = _wait(client, _one_replica(env), proxy, image_of(service), None, time.monotonic(), timeout)
        return state, message
    deadline = time.monotonic() + timeout
    container = client.containers.get(proxy)
    while time.monotonic() < deadline:
        container.reload()
        if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
            return "completed", "healthy"
        time.sleep(0.5)
    log = container.logs(tail=20).decode(errors="replace").strip()
    return "timeout", f"container not healthy after {timeout:.0f} s ({container.status}); its log: {log or '(empty)'}"


def image_of(service: Any) -> str:
    """The image a service's spec runs (by digest, as deployed)."""
    return service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def _running(service: Any, image: str) -> list[dict[str, Any]]:
    """Tasks meant to run that run (= healthy, with a healthcheck) the given image."""
    return [
        t
        for t in service.tasks(filters={"desired-state": "running"})
        if t["Status"]["State"] == "running" and t["Spec"]["ContainerSpec"]["Image"] == image
    ]


def _task_errors(service: Any, image: str) -> str:
    """Why the service's tasks of `image` failed (the last few distinct reasons), for messages."""
    tasks = [t for t in service.tasks() if t["Spec"]["ContainerSpec"]["Image"] == image]
    tasks.sort(key=lambda t: t.get("CreatedAt", ""))
    errors = [t["Status"]["Err"] for t in tasks if t["Status"].get("Err")]
    if errors:
        return "; ".join(dict.fromkeys(errors[-3:]))
    states = ", ".join(dict.fromkeys(f"{t['Status']['State']} ({t['Status'].get('Message', '')})" for t in tasks))
    # a container stopped for failing its healthcheck exits cleanly when it handles SIGTERM: no error is recorded
    return (
        f"tasks {states or 'none'} without an error: most likely never healthy (GET /readyz not 200 within "
        f"the gate's max_startup_s + {HEALTH_RETRIES} x {HEALTH_INTERVAL_S} s)"
    )


def _timeout_s(env: Environment, monitor_s: float) -> float:
    health = HEALTH_INTERVAL_S * HEALTH_RETRIES + HEALTH_TIMEOUT_S
    per_task = env.gate.max_startup_s + health + monitor_s
    return per_task * (env.replicas + 1) + 60  # the update, and a rollback of one replica


def _wait(
    client: Any, env: Environment, name: str, image: str, before: dict[str, Any] | None, started: float, timeout: float
) -> tuple[str, float | None, str]:
    """Wait for the update (or first start) to finish; returns (swarm's state, startup_s, message)."""
    startup_s = None
    deadline = started + timeout
    while time.monotonic() < deadline:
        service = client.services.get(name)
        status = service.attrs.get("UpdateStatus")
        if startup_s is None and len(_running(service, image)) >= env.replicas:
            startup_s = round(time.monotonic() - started, 2)
        if status and status != before:
            if status.get("State") in DONE:
                return status["State"], startup_s, status.get("Message", "")
        elif startup_s is not None and (before is None or time.monotonic() - started > 5):
            return "completed", startup_s, "all replicas run the image"  # a first start, or nothing to roll out
        time.sleep(0.5)
    return "timeout", startup_s, f"not finished after {timeout:.0f} s: {_task_errors(client.services.get(name), image)}"


def _write_service(
    client: Any, env: Environment, image: str, previous: str | None, *, directory: Path, monitor_s: float
) -> tuple[Any, dict[str, Any] | None, bool]:
    """Create or update the app service to `image`; returns (service, its UpdateStatus before, created)."""
    network_name, app, _ = names(env)
    secrets = _secret_refs(client, env, directory)  # before anything is created: a missing one stops the deploy
    network = _network(client, network_name, env)
    spec = _app_spec(env, image, network.id, secrets, monitor_s)
    labels = {LABEL_ENVIRONMENT: env.name, LABEL_ROLE: "app"}
    if previous:
        labels[LABEL_PREVIOUS] = previous
    service = _service(client, app)
    if service is None:
        client.api.create_service(name=app, labels=labels, **spec)
        return client.services.get(app), None, True
    before = service.attrs.get("UpdateStatus")
    client.api.update_service(service.id, service.version, name=app, labels=labels, **spec)
    return service, before, False


def _result(
    env: Environment, image: str, previous: str | None, state: str, startup_s: float | None, message: str, t0: float
) -> DeployResult:
    return DeployResult(
        environment=env.name,
        image=image,
        previous_image=previous,
        state=state,
        startup_s=startup_s if state != "rolled_back" else None,
        url=url_of(env),
        message=message,
        duration_s=round(time.monotonic() - t0, 2),
    )


def _roll_out(
    env: Environment,
    image: str,
    previous: str | None,
    *,
    client: Any,
    proxy_image: str | None,
    directory: Path,
    monitor_s: float,
) -> DeployResult:
    t0 = time.monotonic()
    network_name, app, proxy = names(env)
    _check_proxy_bind(client, env, directory)
    _, before, created = _write_service(client, env, image, previous, directory=directory, monitor_s=monitor_s)
    network = _network(client, network_name, env)
    _ensure_proxy(client, env, image, proxy_image, network)
    state, startup_s, message = _wait(client, env, app, image, before, t0, _timeout_s(env, monitor_s))
    if state == "completed":
        proxy_state, proxy_message = _wait_proxy(client, env, 60 + env.gate.max_startup_s)
        if proxy_state != "completed":
            return _result(env, image, previous, "failed", startup_s, f"proxy {proxy}: {proxy_message}", t0)
        return _result(env, image, previous, "deployed", startup_s, message, t0)
    if state == "rollback_completed":
        return _result(
            env,
            image,
            previous,
            "rolled_back",
            None,
            f"swarm rolled back to {image_of(client.services.get(app))}; {image}: {_task_errors(client.services.get(app), image)}",
            t0,
        )
    detail = "" if created else " (the previous image keeps serving where its tasks still run)"
    return _result(env, image, previous, "failed", startup_s, f"{state}: {message}{detail}", t0)


def _one_replica(env: Environment) -> Environment:
    return env.model_copy(update={"replicas": 1})


def deploy(
    env: Environment,
    image: str,
    *,
    client: Any | None = None,
    proxy_image: str | None = None,
    directory: Path = ENVIRONMENTS_DIR,
    monitor_s: float = MONITOR_S,
) -> DeployResult:
    """Roll `image` out to `env` (creating its network, services and proxy on the first deploy) and wait for the end.

    `rolled_back` means a new task crashed or never got healthy and swarm restored the previous image (which
    kept serving throughout); `failed` means the roll-out did not finish in time or paused.
    """
    check_deployable(env, directory)
    client = client or client_for(env)
    ensure_swarm(client, env)
    current = _service(client, names(env)[1])
    running = current is not None and same_image(image_of(current), image)
    if running:  # a redeploy of the same image keeps the label pointing at the one before it
        previous = current.attrs["Spec"].get("Labels", {}).get(LABEL_PREVIOUS)
    else:
        previous = image_of(current) if current is not None else None
    result = _roll_out(
        env, image, previous, client=client, proxy_image=proxy_image, directory=directory, monitor_s=monitor_s
    )
    if running:
        result.startup_s = None  # nothing started: there is no start-up time to measure
    return result


def rollback(
    env: Environment,
    *,
    client: Any | None = None,
    directory: Path = ENVIRONMENTS_DIR,
    monitor_s: float = MONITOR_S,
) -> DeployResult:
    """Deploy the image that ran before the last deploy (recorded in a label: swarm's own PreviousSpec is gone
    after an automatic rollback). The image rolled back from becomes the next `rollback`'s target."""
    check_deployable(env, directory)
    client = client or client_for(env)
    _, app, _ = names(env)
    service = _service(client, app)
    if service is None:
        raise DeployError(
            f"nothing to roll back: service {app} does not exist",
            where=env_file(env, directory),
            hint=f"deploy first: `docs-assistant deploy {env.name} --image REF`",
        )
    previous = service.attrs["Spec"].get("Labels", {}).get(LABEL_PREVIOUS)
    if not previous:
        raise DeployError(
            f"no previous image recorded on service {app} (label {LABEL_PREVIOUS}): it has had one deploy only",
            where=env_file(env, directory),
            hint=f"deploy the image you want: `docs-assistant deploy {env.name} --image REF`",
        )
    current = image_of(service)
    result = _roll_out(
        env, previous, current, client=client, proxy_image=None, directory=directory, monitor_s=monitor_s
    )
    if result.state == "deployed":
        result.state = "rolled_back"
        result.message = f"rolled back from {current}"
    elif result.state == "rolled_back":  # swarm undid the rollback: the image rolled back to never got healthy
        result.state = "failed"
        result.message = f"swarm reverted the rollback, {current} still runs: {result.message}"
    return result


@dataclass(frozen=True)
class Cleanup:
    """One object `env down` removed, or kept and why (`reason`)."""

    action: str  # removed, untagged or kept
    kind: str  # service, container, secret, network, image
    name: str
    reason: str = ""

    def line(self) -> str:
        return f"{self.action} {self.kind} {self.name}" + (f" ({self.reason})" if self.reason else "")


def is_manager(client: Any) -> bool:
    """Whether the engine is a swarm manager; an engine out of swarm mode holds no service, secret or overlay network."""
    state = client.info().get("Swarm", {})
    return state.get("LocalNodeState") == "active" and bool(state.get("ControlAvailable"))


def remove_services(client: Any, env: Environment, *, timeout_s: float = 120) -> list[Cleanup]:
    """Remove the proxy (service or container) and the app service, and wait for their containers to stop."""
    _, app, proxy = names(env)
    done = []
    container = _container(client, proxy)
    if container is not None:
        container.stop(timeout=5)
        container.remove(force=True)
        done.append(Cleanup("removed", "container", proxy))
    if not is_manager(client):
        return done
    for name in (proxy, app):
        service = _service(client, name)
        if service is not None:
            service.remove()
            done.append(Cleanup("removed", "service", name))
    deadline = time.monotonic() + timeout_s
    for name in (proxy, app):  # a container of a removed service stops within its stop_grace_period
        label = f"com.docker.swarm.service.name={name}"
        # sparse: no inspect per container, which races the very removal it waits for (404 on a gone container)
        while client.containers.list(all=True, sparse=True, filters={"label": label}) and time.monotonic() < deadline:
            time.sleep(0.5)
    return done


def remove_network(client: Any, env: Environment, *, timeout_s: float = 120) -> list[Cleanup]:
    """Remove the environment's network, retrying while the engine still detaches stopped tasks from it."""
    network_name, _, _ = names(env)
    deadline = time.monotonic() + timeout_s
    return [
        Cleanup("removed", "network", network_name)
        for network in client.networks.list(names=[network_name])
        if network.name == network_name and _remove_while_in_use(network, deadline)
    ]


def _remove_while_in_use(resource: Any, deadline: float) -> bool:
    """Remove a network or volume, retrying while the engine still holds it for stopped tasks; False: it was gone."""
    from docker.errors import APIError, NotFound

    while True:
        try:
            resource.remove()
            return True
        except NotFound:
            return False
        except APIError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def remove_secrets(client: Any, env: Environment) -> list[Cleanup]:
    """Remove the secrets the deploy created for the environment (labelled with it, see `_secret_refs`).

    A secret the file names that someone created by hand (no label) is kept and reported: it may hold a key
    that exists nowhere else, and a deploy cannot recreate it unless its variable is set.
    """
    from docker.errors import APIError, NotFound

    if not is_manager(client):
        return []
    done = []
    made = client.secrets.list(filters={"label": f"{LABEL_ENVIRONMENT}={env.name}"})
    for secret in sorted(made, key=lambda s: s.name):
        try:
            secret.remove()
            done.append(Cleanup("removed", "secret", secret.name))
        except NotFound:
            continue
        except APIError as err:  # still mounted by a service of another environment
            done.append(Cleanup("kept", "secret", secret.name, str(err.explanation or err)))
    made_names = {s.name for s in made}
    for var, name in sorted(env.secrets.items()):
        if name in made_names:
            continue
        if any(s.name == name for s in client.secrets.list(filters={"name": name})):
            done.append(
                Cleanup("kept", "secret", name, f"secrets.{var}: made outside the deploy; `docker secret rm {name}`")
            )
    return done


def images_of(client: Any, env: Environment) -> tuple[list[str], list[str]]:
    """(app images, proxy images) the environment's services run or ran: the app's current and previous
    image, and the proxy's. Read before `remove_services`, which takes the specs with it."""
    _, app, proxy = names(env)
    apps: list[str] = []
    proxies: list[str] = []
    service = _service(client, app) if is_manager(client) else None
    if service is not None:
        apps.append(image_of(service))
        previous = service.attrs["Spec"].get("Labels", {}).get(LABEL_PREVIOUS)
        if previous:
            apps.append(previous)
    proxy_service = _service(client, proxy) if is_manager(client) else None
    if proxy_service is not None:
        proxies.append(image_of(proxy_service))
    container = _container(client, proxy)
    if container is not None:
        proxies.append(container.attrs["Config"]["Image"])
    return apps, proxies


def _local_image(client: Any, ref: str) -> tuple[Any, str] | None:
    """The local image a service's reference names, and the form that found it (`repo:tag@sha256:x` is
    looked up as `repo@sha256:x`, the form the engine records); None when the engine does not hold it."""
    from docker.errors import ImageNotFound

    forms = [ref]
    if "@" in ref:
        name, _, digest = ref.partition("@")
        repo = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
        forms.append(f"{repo}@{digest}")
    for form in forms:
        try:
            return client.images.get(form), form
        except ImageNotFound:
            continue
    return None


def is_ours(image: Any) -> bool:
    """An image `docs-assistant image build` made (its OCI title label), which `env down --images` may delete whole."""
    return (image.labels or {}).get("org.opencontainers.image.title") == APP


def remove_images(client: Any, apps: list[str], proxies: list[str]) -> list[Cleanup]:
    """Remove the images the services ran, once no container uses them.

    An image this project built is deleted with every tag it has (that is what frees its gigabytes); any other
    image loses only the reference the service ran, and stays while other tags name it. A proxy image is
    removed only when it is the app's image or one of ours: `--proxy-image` may be a shared base image.
    """
    from docker.errors import APIError, ImageNotFound

    done: list[Cleanup] = []
    seen: set[str] = set()  # an app image the proxy runs too is handled as the app's
    for role, refs in (("app", apps), ("proxy", proxies)):
        for ref in dict.fromkeys(refs):
            found = _local_image(client, ref)
            if found is None:
                continue
            image, form = found
            if image.id in seen:
                continue
            seen.add(image.id)
            if role == "proxy" and not is_ours(image):
                done.append(Cleanup("kept", "image", ref, "the proxy's image, not built by this project"))
                continue
            users = client.containers.list(all=True, sparse=True, filters={"ancestor": image.id})
            if users:
                names_ = ", ".join(sorted(c.attrs.get("Names", ["?"])[0].lstrip("/") for c in users))
                done.append(Cleanup("kept", "image", ref, f"in use by {names_}"))
                continue
            size = f"{image.attrs.get('Size', 0) / 1e9:.1f} GB"
            try:
                if is_ours(image):
                    client.images.remove(image.id, force=True)  # every tag: no container uses it (checked above)
                    done.append(Cleanup("removed", "image", ref, f"{image.short_id}, {size}"))
                    continue
                client.images.remove(form)
            except ImageNotFound:
                continue
            except APIError as err:
                done.append(Cleanup("kept", "image", ref, str(err.explanation or err)))
                continue
            if _local_image(client, image.id) is None:
                done.append(Cleanup("removed", "image", ref, f"{image.short_id}, {size}"))
            else:
                others = ", ".join(client.images.get(image.id).tags) or "its digest"
                done.append(Cleanup("untagged", "image", ref, f"the image stays: also named {others}"))
    return done


def remove(
    env: Environment, *, client: Any | None = None, timeout_s: float = 120, feedback: bool = False
) -> list[Cleanup]:
    """Remove the environment's proxy and app, the secrets the deploy made for it, and its network; its
    feedback volume only with `feedback` (it holds users' ratings that exist nowhere else)."""
    client = client or client_for(env)
    return [
        *remove_services(client, env, timeout_s=timeout_s),
        *remove_secrets(client, env),
        *remove_network(client, env, timeout_s=timeout_s),
        *remove_feedback(client, env, delete=feedback, timeout_s=timeout_s),
    ]


def remove_feedback(client: Any, env: Environment, *, delete: bool, timeout_s: float = 120) -> list[Cleanup]:
    """Keep (and say how to export) or, with `delete`, remove the feedback volume once no task holds it."""
    from docker.errors import NotFound

    name = feedback_volume(env)
    try:
        volume = client.volumes.get(name)
    except NotFound:
        return []
    if not delete:
        how = f"`docs-assistant env feedback {env.name}` exports it; `env down {env.name} --feedback` deletes it"
        return [Cleanup("kept", "volume", name, f"users' feedback: {how}")]
    removed = _remove_while_in_use(volume, time.monotonic() + timeout_s)
    return [Cleanup("removed", "volume", name)] if removed else []


def leave_swarm(client: Any) -> str:
    """Leave swarm mode when nothing else lives in the swarm: no service, no secret, no other node.

    Leaving deletes every service, secret and overlay network of the swarm, so anything left there (another
    project's, or a secret kept because it was made by hand) means staying, and the line says what remains.
    """
    if client.info().get("Swarm", {}).get("LocalNodeState") != "active":
        return "swarm: not in swarm mode, nothing to leave"
    if not is_manager(client):
        return "swarm: this engine is a worker; not left (`docker swarm leave` on it, after draining it)"
    remaining = [f"service {s.name}" for s in client.services.list()]
    remaining += [f"secret {s.name}" for s in client.secrets.list()]
    this_node = client.info().get("Swarm", {}).get("NodeID", "")
    others = [n for n in client.nodes.list() if n.id != this_node]
    remaining += [f"node {n.attrs.get('Description', {}).get('Hostname', n.id)}" for n in others]
    if remaining:
        return (
            f"swarm: not left, it still holds {', '.join(sorted(remaining))} "
            "(remove them, or `docker swarm leave --force` deletes them with it)"
        )
    client.swarm.leave(force=True)  # a manager's leave needs force, even when it is the only node
    return "swarm: left (no service, secret or other node remained)"


def status(env: Environment, client: Any | None = None) -> dict[str, Any]:
    """The live state of the environment's services, as JSON-ready data."""
    client = client or client_for(env)
    _, app, proxy = names(env)
    out: dict[str, Any] = {"environment": env.name, "url": url_of(env)}
    for role, name in (("app", app), ("proxy", proxy)):
        service = _service(client, name)
        container = _container(client, name) if role == "proxy" and service is None else None
        if container is not None:
            live = _live_bind(client, env)
            out[role] = {
                "container": name,
                "image": container.attrs["Config"]["Image"],
                "bind": live[1] if live else None,
                "replicas": 1,
                "running": int(container.status == "running"),
                "health": container.attrs["State"].get("Health", {}).get("Status"),
            }
            continue
        if service is None:
            out[role] = None
            continue
        spec = service.attrs["Spec"]
        tasks = service.tasks(filters={"desired-state": "running"})
        out[role] = {
            "service": name,
            "image": image_of(service),
            "previous_image": spec.get("Labels", {}).get(LABEL_PREVIOUS),
            "replicas": spec.get("Mode", {}).get("Replicated", {}).get("Replicas"),
            "running": sum(t["Status"]["State"] == "running" for t in tasks),
            "update_status": service.attrs.get("UpdateStatus"),
        }
    return out


def drift(env: Environment, client: Any | None = None, *, image: str | None = None) -> list[str]:
    """Differences between the live services and the environment file (and `image`, when given); [] = none."""
    client = client or client_for(env)
    _, app, proxy = names(env)
    service = _service(client, app)
    if service is None:
        return [f"service {app} does not exist (never deployed, or removed)"]
    spec = service.attrs["Spec"]
    container = spec["TaskTemplate"]["ContainerSpec"]
    diffs = []
    live_image = container["Image"]
    if image is not None and not same_image(live_image, image):
        diffs.append(f"image: {live_image} runs, {image} expected")
    replicas = spec.get("Mode", {}).get("Replicated", {}).get("Replicas")
    if replicas != env.replicas:
        diffs.append(f"replicas: {replicas} live, {env.replicas} in the file")
    running = len(_running(service, live_image))
    if replicas is not None and running != replicas:
        diffs.append(f"running tasks: {running} of {replicas} replicas")
    live_env = dict(item.partition("=")[::2] for item in container.get("Env") or [])
    for key in sorted(set(live_env) | set(env.config)):
        if live_env.get(key) != env.config.get(key):
            live = f"{key}={live_env[key]!r}" if key in live_env else f"{key} unset"
            wanted = f"{env.config[key]!r}" if key in env.config else "not in the file"
            diffs.append(f"config.{key}: live {live}, file {wanted}")
    live_secrets = {s["File"]["Name"]: s["SecretName"] for s in container.get("Secrets") or []}
    if live_secrets != env.secrets:
        diffs.append(f"secrets: live {live_secrets}, file {dict(env.secrets)}")
    limits = spec["TaskTemplate"].get("Resources", {}).get("Limits", {})
    cpus = limits.get("NanoCPUs") or None
    want_cpus = int(env.resources.cpus * NS) if env.resources and env.resources.cpus else None
    if cpus != want_cpus:
        diffs.append(
            f"resources.cpus: live {cpus / NS if cpus else None}, file {want_cpus / NS if want_cpus else None}"
        )
    memory = limits.get("MemoryBytes") or None
    want_memory = env.resources.memory_bytes if env.resources else None
    if memory != want_memory:
        diffs.append(f"resources.memory: live {memory} bytes, file {want_memory} bytes")
    label = spec.get("Labels", {}).get(LABEL_ENVIRONMENT)
    if label != env.name:
        diffs.append(f"label {LABEL_ENVIRONMENT}: live {label!r}, expected {env.name!r}")
    live_proxy = _live_bind(client, env)
    if live_proxy is None:
        diffs.append(f"proxy {proxy} does not exist: nothing publishes port {env.port}")
    else:
        kind, address, ports = live_proxy
        if ports != [env.port]:
            diffs.append(f"port: the proxy publishes {ports}, the file says {env.port}")
        if _bind_differs(address, env):
            diffs.append(f"bind: the proxy {kind} publishes on {address}, the file says {env.bind}")
    return diffs


def same_image(live: str, expected: str) -> bool:
    """Equal references, or the same digest (`repo@sha256:x` against `sha256:x` or another tag of it)."""
    if live == expected:
        return True
    digest = lambda ref: ref.rpartition("@")[2] if "@" in ref else ref  # noqa: E731
    return digest(live).startswith("sha256:") and digest(live) == digest(expected)


def check_target(env: Environment, directory: Path = ENVIRONMENTS_DIR) -> None:
    """Only `target = "docker"` environments live on a Docker engine; Kubernetes ones are applied with kubectl."""
    if env.target != "docker":
        raise DeployError(
            f"target: {env.target!r}; this command deploys to Docker swarm only",
            where=env_file(env, directory),
            hint=f"apply the manifests: `kubectl apply --server-side -k deploy/kubernetes/overlays/{env.name}` "
            "(see docs/promotion/kubernetes.md)",
        )


def check_deployable(env: Environment, directory: Path = ENVIRONMENTS_DIR) -> None:
    """`check_target`, and, before any engine is asked, no loopback `bind` on an engine that $DOCKER_HOST puts on
    another machine: the port would be out of reach. (Commands that only read, drift and the feedback export,
    need not refuse it.)"""
    check_target(env, directory)
    engine = engine_url(env)
    if env.docker_host is None and remote_host(engine) and env.binds_loopback:
        # the file's own docker_host is checked when it loads; $DOCKER_HOST only exists at run time
        raise DeployError(
            f"bind = {env.bind!r} while DOCKER_HOST={engine} is another machine: {LOOPBACK_ELSEWHERE}",
            where=env_file(env, directory),
            hint='set bind = "0.0.0.0" (with an API key in [secrets]), or unset DOCKER_HOST to deploy here',
        )
