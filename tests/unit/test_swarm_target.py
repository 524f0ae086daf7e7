"""The swarm deploy target without an engine: what it refuses and how it compares images."""

from __future__ import annotations

from pathlib import Path

import pytest

from docs_assistant.deploy import swarm
from docs_assistant.deploy.environments import load_environment
from docs_assistant.errors import DeployError

REPO = Path(__file__).resolve().parents[2]


def test_a_kubernetes_environment_is_sent_to_kubectl(tmp_path: Path) -> None:
    text = (REPO / "deploy/environments/staging.toml").read_text(encoding="utf-8")
    (tmp_path / "staging.toml").write_text(text.replace('target = "docker"', 'target = "kubernetes"'), encoding="utf-8")
    env = load_environment("staging", tmp_path)
    with pytest.raises(DeployError) as err:
        swarm.deploy(env, "registry/repo@sha256:" + "0" * 64, client=object(), directory=tmp_path)
    text = str(err.value)
    assert str(tmp_path / "staging.toml") in text
    assert "kubectl apply --server-side -k deploy/kubernetes/overlays/staging" in text


def test_services_are_named_after_the_environment() -> None:
    env = load_environment("prod", REPO / "deploy/environments")
    assert swarm.names(env) == ("docs-assistant-prod", "docs-assistant-prod", "docs-assistant-prod-proxy")


@pytest.mark.parametrize(
    ("live", "expected", "same"),
    [
        ("repo:v1", "repo:v1", True),
        ("reg/repo@sha256:abc", "sha256:abc", True),
        ("reg/repo@sha256:abc", "other/repo@sha256:abc", True),
        ("reg/repo@sha256:abc", "reg/repo@sha256:def", False),
        ("repo:v1", "repo:v2", False),
    ],
)
def test_images_compare_by_digest(live: str, expected: str, same: bool) -> None:
    assert swarm.same_image(live, expected) is same
