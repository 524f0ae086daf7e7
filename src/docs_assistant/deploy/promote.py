"""Promotion: one image, by digest, environment after environment, each behind its load-test gate.

Per environment: roll the image out (swarm keeps the previous image serving until new tasks are healthy),
run the gate (the roll-out's startup time plus locust's latency, error-rate and throughput against the
environment's `[gate]`), and on a breach roll back to the previous image. The deploy and the gate go into
the release manifest (`deploys.<env>`, `gates.<env>`), and promotion stops at the first failed gate.

The gate runs as a child process (`docs-assistant loadtest`): importing locust monkey-patches the
standard library with gevent, which the Docker SDK's open connections in this process must not see.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from docs_assistant.deploy import swarm
from docs_assistant.deploy.environments import ENVIRONMENTS_DIR, Environment, promotion_chain
from docs_assistant.errors import ConfigError, DeployError

State = Literal["passed", "failed", "awaiting_approval"]


@dataclass
class Step:
    """One environment of a promotion: what was deployed, what the gate said, what was rolled back."""

    environment: str
    image: str
    state: State
    deploy: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    rollback: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        if self.state == "awaiting_approval":
            return f"{self.environment}: waits for approval (approval = true); not deployed"
        failed = ", ".join((self.gate or {}).get("failed", [])) or "deploy"
        back = ""
        if self.rollback:
            done = self.rollback.get("state", "rolled_back") == "rolled_back"
            back = f"; {'rolled back' if done else 'rollback FAILED'} to {self.rollback['image']}"
        verdict = "gate passed" if self.state == "passed" else f"gate failed on {failed}{back}"
        return f"{self.environment}: {self.image}: {verdict}"


def startup_failure(env: Environment, result: swarm.DeployResult) -> dict[str, Any]:
    """The gate's verdict when the new image never got every replica ready: the startup objective failed."""
    return {
        "stage": "loadtest",
        "environment": env.name,
        "url": result.url,
        "passed": False,
        "failed": ["startup_s"],
        "startup_measured": False,
        "reason": f"{result.state}: {result.message}",
        "gate": env.gate.model_dump(),
    }


def run_gate(
    env: Environment,
    url: str,
    startup_s: float | None,
    *,
    gate_file: Path,
    reports_dir: Path,
    api_key: str | None = None,
) -> dict[str, Any]:
    """`docs-assistant loadtest` against the environment's URL; returns its summary (exit 1 = a breach)."""
    from docs_assistant.loadtest.inputs import report_dir

    summary_path = report_dir(reports_dir, env.name) / "summary.json"
    summary_path.unlink(missing_ok=True)  # a summary left by an earlier run must not pass for this one
    command = [sys.executable, "-m", "docs_assistant.cli", "loadtest", "--env", env.name]
    command += ["--gate-file", str(gate_file), "--url", url]
    if startup_s is not None:
        command += ["--startup-s", str(startup_s)]
    child_env = os.environ | ({"LOADTEST_API_KEY": api_key} if api_key else {})
    done = subprocess.run(command, env=child_env, check=False)
    if done.returncode not in (0, 1) or not summary_path.is_file():
        raise DeployError(
            f"the load test of {env.name} could not run (exit status {done.returncode}); its output is above",
            where=gate_file,
            hint="the environment stays on the new image: fix the cause, then gate it with "
            f"`docs-assistant loadtest --env {env.name} --url {url}` or `docs-assistant rollback {env.name}`",
        )
    return json.loads(summary_path.read_text(encoding="utf-8"))


def deploy_gated(
    env: Environment,
    image: str,
    *,
    directory: Path = ENVIRONMENTS_DIR,
    reports_dir: Path,
    api_key: str | None = None,
    proxy_image: str | None = None,
    client: Any | None = None,
    monitor_s: float = swarm.MONITOR_S,
) -> Step:
    """Deploy, gate, and roll back on a failed gate; the previous image serves until the new one is ready."""
    swarm.check_deployable(env, directory)  # before client_for reaches for the engine
    client = client or swarm.client_for(env)
    result = swarm.deploy(env, image, client=client, proxy_image=proxy_image, directory=directory, monitor_s=monitor_s)
    step = Step(env.name, image, "failed", deploy=result.as_dict())
    if result.state == "rolled_back":  # swarm restored the previous image by itself: a failed startup
        step.gate = startup_failure(env, result)
        return step
    if result.state != "deployed":
        step.gate = startup_failure(env, result)
        if result.previous_image:
            step.rollback = swarm.rollback(env, client=client, directory=directory, monitor_s=monitor_s).as_dict()
        return step
    gate_file = swarm.env_file(env, directory)
    try:  # a redeploy of the running image reports no startup_s: the gate then checks latency only
        step.gate = run_gate(
            env, result.url, result.startup_s, gate_file=gate_file, reports_dir=reports_dir, api_key=api_key
        )
    except DeployError as err:  # a gate that could not run is no pass: the new image must not stay ungated
        step.gate = startup_failure(env, result) | {"failed": ["loadtest"], "reason": str(err)}
    if step.gate["passed"]:
        step.state = "passed"
    elif result.previous_image:
        step.rollback = swarm.rollback(env, client=client, directory=directory, monitor_s=monitor_s).as_dict()
    return step


def promote(
    image: str,
    environments: Mapping[str, Environment],
    *,
    start: str = "dev",
    stop: str | None = None,
    approved: bool = False,
    directory: Path = ENVIRONMENTS_DIR,
    reports_dir: Path,
    manifest: Path | None = None,
    api_key: str | None = None,
    proxy_image: str | None = None,
    monitor_s: float = swarm.MONITOR_S,
) -> list[Step]:
    """Deploy and gate `image` along the chain from `start` (to `stop`, else to its end); stops at a failed
    gate, and before an environment with `approval = true` unless `approved` (GitHub's environment
    protection approves in CI; on a laptop the person running it does, with `--approve`)."""
    chain = promotion_chain(environments, start)
    if stop is not None:
        if stop not in chain:
            raise DeployError(
                f"--to {stop!r} is not on the promotion chain {' -> '.join(chain)}",
                where=directory,
                hint="name an environment that the chain from --from reaches through promotes_to",
            )
        chain = chain[: chain.index(stop) + 1]
    steps: list[Step] = []
    for name in chain:
        env = environments[name]
        if env.approval and not approved:
            steps.append(Step(name, image, "awaiting_approval"))
            break
        step = deploy_gated(
            env,
            image,
            directory=directory,
            reports_dir=reports_dir,
            api_key=api_key,
            proxy_image=proxy_image,
            monitor_s=monitor_s,
        )
        record(step, manifest)
        steps.append(step)
        if step.state != "passed":
            break
    return steps


def deploy_ungated(
    env: Environment,
    image: str,
    *,
    promoting: bool,
    approved: bool,
    directory: Path = ENVIRONMENTS_DIR,
    manifest: Path | None = None,
    proxy_image: str | None = None,
) -> swarm.DeployResult:
    """`--no-gate`: one roll-out, no load test, recorded as unjudged; promoting needs a gate, approval still applies."""
    if promoting:
        raise ConfigError("--promote and --to need the gate", where="--no-gate", hint="promote only gated deploys")
    if env.approval and not approved:
        raise ConfigError(
            f"{env.name} requires approval (approval = true)",
            where=directory / f"{env.name}.toml",
            hint="add --approve",
        )
    result = swarm.deploy(env, image, proxy_image=proxy_image, directory=directory)
    state: State = "passed" if result.state == "deployed" else "failed"
    step = Step(env.name, image, state, deploy=result.as_dict(), gate={"passed": None, "skipped": True})
    record(step, manifest)
    return result


def record(step: Step, manifest: Path | None) -> None:
    """`deploys.<env>` and `gates.<env>` of the release manifest: what runs where, and what let it through."""
    if manifest is None:
        return
    from docs_assistant.release.manifest import update_manifest

    deployed = dict(step.deploy or {}, rollback=step.rollback)
    gate = {key: (step.gate or {}).get(key) for key in ("passed", "failed", "measured", "gate", "reason", "url")}
    gate["image"] = step.image
    if (step.gate or {}).get("skipped"):  # --no-gate: no earlier verdict may stand for this image
        gate["skipped"] = True
    update_manifest(manifest, deploys={step.environment: deployed}, gates={step.environment: gate})
