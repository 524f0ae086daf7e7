"""The Kubernetes target of environments as code: a kustomize base plus one overlay per environment file.

Everything here is derived from `deploy/environments/<env>.toml` (no second source of truth) and from
what the image promises (port 8000, `/healthz`, `/readyz`, uid 10001, a read-only root with `/tmp`
writable, draining on SIGTERM within `serve.graceful_shutdown_s`). The rendered files are committed;
`check` finds drift between them and a fresh render, `set_image` pins the image by digest at deploy time.

Every environment gets an overlay whatever its `target`, so moving one to Kubernetes changes one key.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from docs_assistant.config import ServeSettings
from docs_assistant.deploy.environments import ENVIRONMENTS_DIR, Environment
from docs_assistant.errors import ConfigError
from docs_assistant.io import atomic_write_text

KUBERNETES_DIR = Path("deploy/kubernetes")
APP = "docs-assistant"
#: the name the base's Deployment uses for the image; kustomize's `images:` entries match it
IMAGE_PLACEHOLDER = APP
CONTAINER_PORT = 8000
RUN_AS = 10001
#: the HPA scales each environment between `replicas` and this many times it
HPA_MAX_FACTOR = 3
#: average CPU use (of the request) the HPA steers to: headroom for a new replica's start-up
HPA_CPU_TARGET = 70
STARTUP_PERIOD_S = 5
#: kubelet waits this long before SIGTERM, so endpoints stop routing to a stopping pod first
PRE_STOP_SLEEP_S = 5
#: slack on top of the pre-stop sleep and the service's own drain before the kubelet sends SIGKILL
TERMINATION_MARGIN_S = 5
#: the Secret key holding the value, one value per Secret as with Docker and GitHub secrets
SECRET_KEY = "value"  # noqa: S105 - a key name, not a secret
GRACEFUL_SHUTDOWN_ENV = "DOCS_ASSISTANT_SERVE__GRACEFUL_SHUTDOWN_S"
BASE_FILES = ("kustomization.yaml", "deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml")
#: a Kubernetes object name (DNS subdomain): what a Secret may be called
K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DIGEST_REFERENCE = re.compile(r"(?P<name>[a-z0-9][a-z0-9._/:-]*[a-z0-9])@(?P<digest>sha256:[0-9a-f]{64})")
HEADER = "# Generated from {source} by `docs-assistant env kubernetes`; do not edit.\n"
GENERATED_MARK = "by `docs-assistant env kubernetes`; do not edit."


def _yaml(source: str, *documents: Any) -> str:
    body = "---\n".join(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=1000) for doc in documents)
    return HEADER.format(source=source) + body


def memory_quantity(n_bytes: int) -> str:
    """Bytes as a Kubernetes quantity in the largest binary unit that divides them: 2g -> '2Gi'."""
    for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if n_bytes % size == 0:
            return f"{n_bytes // size}{unit}"
    return str(n_bytes)


def cpu_quantity(cpus: float) -> str:
    """Cores as a Kubernetes quantity: 1.0 -> '1', 0.5 -> '500m' (millicores, at least 1m)."""
    millis = max(1, round(cpus * 1000))
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def startup_failure_threshold(max_startup_s: float) -> int:
    """Probes of the startup probe so that period * threshold covers the gate's `max_startup_s`."""
    return max(1, math.ceil(max_startup_s / STARTUP_PERIOD_S))


def graceful_shutdown_s(env: Environment) -> float:
    """The drain time the service will use: the environment's override, else the setting's default."""
    value = env.config.get(GRACEFUL_SHUTDOWN_ENV)
    if value is None:
        return float(ServeSettings.model_fields["graceful_shutdown_s"].default)
    try:
        return float(value)
    except ValueError:
        raise ConfigError(
            f"config.{GRACEFUL_SHUTDOWN_ENV}: {value!r} is not a number of seconds", where=f"environment {env.name!r}"
        ) from None


def termination_grace_s(shutdown_s: float) -> int:
    return PRE_STOP_SLEEP_S + math.ceil(shutdown_s) + TERMINATION_MARGIN_S


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _base(shutdown_s: float) -> dict[Path, str]:
    source = "src/docs_assistant/deploy/kubernetes.py (what the image promises)"
    labels = {"app.kubernetes.io/name": APP}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "labels": dict(labels)},
        "spec": {
            # no `replicas`: the HPA owns the count (min = the environment's replicas)
            "selector": {"matchLabels": dict(labels)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": dict(labels),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(CONTAINER_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    # service links would inject DOCS_ASSISTANT_..._PORT variables the settings read
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": termination_grace_s(shutdown_s),
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS,
                        "runAsGroup": RUN_AS,
                        "fsGroup": RUN_AS,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": APP,
                            "image": IMAGE_PLACEHOLDER,
                            "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
                            "startupProbe": _probe("/readyz", period=STARTUP_PERIOD_S, failures=60),
                            "readinessProbe": _probe("/readyz", period=5, failures=2),
                            "livenessProbe": _probe("/healthz", period=10, failures=3),
                            "lifecycle": {
                                "preStop": {
                                    "sleep": {"seconds": PRE_STOP_SLEEP_S},
                                },
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                                "runAsUser": RUN_AS,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - the pod's own emptyDir
                        }
                    ],
                    "volumes": [
                        {
                            "name": "tmp",
                            "emptyDir": {"sizeLimit": "1Gi"},
                        }
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": APP, "labels": dict(labels)},
        "spec": {
            "type": "ClusterIP",
            "selector": dict(labels),
            "ports": [{"name": "http", "port": CONTAINER_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": APP, "labels": dict(labels)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
            "minReplicas": 1,
            "maxReplicas": HPA_MAX_FACTOR,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": HPA_CPU_TARGET},
                    },
                }
            ],
        },
    }
    # maxUnavailable 1 (not minAvailable 1): never blocks a node drain, even at one replica, and still
    # lets only one pod go at a time however far the HPA has scaled out
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": APP, "labels": dict(labels)},
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": dict(labels)},
        },
    }
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [name for name in BASE_FILES if name != "kustomization.yaml"],
    }
    docs = {
        "kustomization.yaml": kustomization,
        "deployment.yaml": deployment,
        "service.yaml": service,
        "hpa.yaml": hpa,
        "pdb.yaml": pdb,
    }
    return {Path("base") / name: _yaml(source, doc) for name, doc in docs.items()}


def _secret_env(env: Environment, source: str) -> list[dict[str, Any]]:
    entries = []
    for var, secret in sorted(env.secrets.items()):
        if not K8S_NAME.fullmatch(secret) or len(secret) > 253:
            raise ConfigError(
                f"secrets.{var}: {secret!r} is not a Kubernetes Secret name (lowercase a-z 0-9 '-' '.')",
                where=source,
                hint="rename the secret in lowercase; Docker and GitHub accept such names too",
            )
        ref = {"name": secret, "key": SECRET_KEY}
        entries.append(
            {
                "name": var,
                "valueFrom": {
                    "secretKeyRef": ref,
                },
            }
        )
    return entries


def _shown(directory: Path) -> str:
    """The folder as the header shows it: relative to the working directory when inside it."""
    try:
        return directory.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return directory.as_posix()


def _overlay(env: Environment, source_dir: Path) -> dict[Path, str]:
    source = f"{_shown(source_dir)}/{env.name}.toml"
    container: dict[str, Any] = {"name": APP}
    container["startupProbe"] = {"failureThreshold": startup_failure_threshold(env.gate.max_startup_s)}
    if env.resources is not None and (env.resources.cpus is not None or env.resources.memory_bytes is not None):
        quantities = {}
        if env.resources.cpus is not None:
            quantities["cpu"] = cpu_quantity(env.resources.cpus)
        if env.resources.memory_bytes is not None:
            quantities["memory"] = memory_quantity(env.resources.memory_bytes)
        # requests = limits: the Guaranteed QoS class, so the latency the gate measured holds under load
        container["resources"] = {"requests": dict(quantities), "limits": dict(quantities)}
    variables = [{"name": key, "value": value} for key, value in sorted(env.config.items())]
    variables += _secret_env(env, source)
    if variables:
        container["env"] = variables
    autoscaled = env.resources is not None and env.resources.cpus is not None
    deployment_spec: dict[str, Any] = {}
    if not autoscaled:
        deployment_spec["replicas"] = env.replicas
    deployment_spec["template"] = {
        "spec": {
            "terminationGracePeriodSeconds": termination_grace_s(graceful_shutdown_s(env)),
            "containers": [container],
        }
    }
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP}, "spec": deployment_spec}
    # a JSON patch: a strategic merge would add the port to the base's (Service ports merge on `port`)
    service = [{"op": "replace", "path": "/spec/ports/0/port", "value": env.port}]
    hpa: dict[str, Any] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": APP},
    }
    if autoscaled:
        hpa["spec"] = {"minReplicas": env.replicas, "maxReplicas": HPA_MAX_FACTOR * env.replicas}
    else:
        hpa["$patch"] = "delete"  # without a CPU request there is no utilisation to scale on
    patches: dict[str, Any] = {
        "deployment-patch.yaml": deployment,
        "service-patch.yaml": service,
        "hpa-patch.yaml": hpa,
    }
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../../base"],
        "nameSuffix": f"-{env.name}",
        "labels": [
            {
                "pairs": {"app.kubernetes.io/instance": f"{APP}-{env.name}", "environment": env.name},
                "includeSelectors": True,
                "includeTemplates": True,
            }
        ],
        # `set_image` pins REGISTRY/REPO@sha256:... here at deploy time
        "images": [{"name": IMAGE_PLACEHOLDER, "newName": IMAGE_PLACEHOLDER}],
        "patches": [
            {
                "path": name,
                "target": {"kind": "Service", "name": APP},
            }
            if name == "service-patch.yaml"
            else {"path": name}
            for name in patches
        ],
    }
    overlay = Path("overlays") / env.name
    files = {overlay / "kustomization.yaml": _yaml(source, kustomization)}
    files.update({overlay / name: _yaml(source, doc) for name, doc in patches.items()})
    return files


def render(environments: Mapping[str, Environment], source_dir: Path = ENVIRONMENTS_DIR) -> dict[Path, str]:
    """Every file of the base and of one overlay per environment, by path relative to the kubernetes folder."""
    files = _base(float(ServeSettings.model_fields["graceful_shutdown_s"].default))
    for name in sorted(environments):
        files.update(_overlay(environments[name], source_dir))
    return files


def _stale(rendered: Mapping[Path, str], out: Path) -> list[Path]:
    """Generated files under `out` that the render no longer produces (an environment file was removed)."""
    stale = []
    for path in sorted(out.glob("**/*.yaml")) if out.is_dir() else []:
        rel = path.relative_to(out)
        if rel not in rendered and GENERATED_MARK in path.read_text(encoding="utf-8").split("\n", 1)[0]:
            stale.append(rel)
    return stale


def check(rendered: Mapping[Path, str], out: Path = KUBERNETES_DIR) -> list[Path]:
    """Files (relative to `out`) that differ from the render: changed, missing, or generated but now stale."""
    drift = [
        rel
        for rel, text in sorted(rendered.items())
        if not (out / rel).is_file() or (out / rel).read_text(encoding="utf-8") != text
    ]
    return sorted([*drift, *_stale(rendered, out)])


def write(rendered: Mapping[Path, str], out: Path = KUBERNETES_DIR) -> list[Path]:
    """Write what changed (atomically, file by file) and remove stale generated files; returns them."""
    changed = check(rendered, out)
    for rel in changed:
        if rel in rendered:
            atomic_write_text(out / rel, rendered[rel])
        else:
            (out / rel).unlink()
            if not any((out / rel).parent.iterdir()):
                (out / rel).parent.rmdir()
    return changed


def kubectl() -> str:
    """kubectl from this Python's environment (the `kubernetes` dependency group), else from PATH."""
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / "kubectl", Path(sys.executable).parent / "kubectl"):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("kubectl")
    if found is None:
        raise ConfigError(
            "kubectl not found", where="PATH", hint="install the kubernetes group: uv sync --group kubernetes"
        )
    return found


def kustomize(directory: Path) -> str:
    """`kubectl kustomize DIRECTORY`: the manifests an overlay (or the base) renders to."""
    result = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ConfigError(f"kustomize failed: {result.stderr.strip()}", where=directory)
    return result.stdout


def set_image(overlay: Path, reference: str) -> str:
    """The overlay's manifests with the image pinned to `reference`, `REGISTRY/REPO@sha256:<hex>`.

    Nothing is edited: a throw-away kustomization takes the overlay as its resource and sets the image,
    so the committed overlay stays as generated. Tags are refused: environments are promoted by digest.
    """
    match = DIGEST_REFERENCE.fullmatch(reference)
    if match is None:
        raise ConfigError(
            f"{reference!r} is not an image reference pinned by digest (REGISTRY/REPO@sha256:<64 hex>)",
            where="argument reference",
            hint="deploy the digest `docs-assistant image build` reported, never a tag",
        )
    if not (overlay / "kustomization.yaml").is_file():
        raise ConfigError("no kustomization.yaml here", where=overlay, hint="run `docs-assistant env kubernetes`")
    with tempfile.TemporaryDirectory(prefix="kustomize-pin-") as tmp:
        pin = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            # kustomize takes relative paths only (going up is allowed for a directory)
            "resources": [os.path.relpath(overlay.resolve(), Path(tmp).resolve())],
            "images": [{"name": IMAGE_PLACEHOLDER, "newName": match["name"], "digest": match["digest"]}],
        }
        (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump(pin, sort_keys=False), encoding="utf-8")
        manifests = kustomize(Path(tmp))
    if f"image: {reference}\n" not in manifests:
        raise ConfigError(
            f"the image was not pinned: no container image named {IMAGE_PLACEHOLDER!r} after the overlay",
            where=overlay,
            hint="regenerate the overlay with `docs-assistant env kubernetes`",
        )
    return manifests
