"""`cd.yml` run by act on a copy of this tree, against the local Docker Engine and htpasswd registry.

release.yml runs the chain up to fine-tuning, releases (bump commit, changelog, annotated tag) and pushes
both; image.yml then builds the tag's image from the release's recorded state (the adapter the manifest
pins, trained by nothing in its own job), pushes it with the registry secrets, and adds its digest to the
release manifest; deploy.yml then deploys that digest to dev, staging and prod on the local swarm, each
behind its load-test gate, and carries the manifest on with each environment's deploy and gate in it.

The repository's URL (`https://github.com/docs-assistant/docs-assistant`) is rewritten, for every git
command the jobs run, to the test's own repository (git's `url.<local>.insteadOf`, given through
`GIT_CONFIG_*` variables): release.yml's push lands there (`updateInstead` moves its working tree along),
and image.yml's checkout of the tag clones from there, as it would from GitHub.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ..docker.conftest import (  # noqa: TID252 - the engine and registry the image tests use
    ENVIRONMENTS,
    PASSWORD,
    REGISTRY,
    USERNAME,
    engine,
    image_env,
    remove_environments,
    shorten_environments,
    skip_or_fail_without_docker,
)
from .conftest import git, run_act
from .test_prompt_evals_act import eval_repo

pytestmark = [pytest.mark.workflows, pytest.mark.docker]

CD = ".github/workflows/cd.yml"
#: `github.server_url/github.repository` as act derives it from `origin`: release.yml pushes there, image.yml clones
REMOTE = "https://github.com/docs-assistant/docs-assistant"
TIMEOUT = 2400  # the release job runs the chain up to fine-tuning once; the image job builds; three deploys
API_KEY = "cd-test-key"


def cd_repo(tmp_path: Path) -> tuple[Path, str]:
    repo = eval_repo(tmp_path)
    tag = shorten_environments(repo)  # free ports, this run's secret names, 10-second gates
    git(repo, "add", "-A")
    git(repo, "commit", "--amend", "-qm", "feat: a first release")  # a conventional commit that bumps the minor
    git(repo, "config", "receive.denyCurrentBranch", "updateInstead")
    return repo, tag


def rewrite_remote(repo: Path) -> dict[str, str]:
    """git configuration, as environment variables, that sends `REMOTE` (with or without `.git`) to `repo`."""
    urls = (f"{REMOTE}.git", REMOTE)  # git takes the longest match
    env = {"GIT_CONFIG_COUNT": str(len(urls))}
    for i, url in enumerate(urls):
        env |= {f"GIT_CONFIG_KEY_{i}": f"url.{repo}.insteadOf", f"GIT_CONFIG_VALUE_{i}": url}
    return env


@pytest.mark.timeout(TIMEOUT + 120)
def test_cd_releases_then_builds_and_pushes_the_tags_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = engine()
    if client is None:
        skip_or_fail_without_docker()
    for name, value in image_env().items():  # self-hosted steps inherit this environment
        monkeypatch.setenv(name, value)
    repo, tag = cd_repo(tmp_path)
    for name, value in rewrite_remote(repo).items():
        monkeypatch.setenv(name, value)
    try:
        check_cd(client, repo, tmp_path)
    finally:
        remove_environments(repo, tag)


def check_cd(client: Any, repo: Path, tmp_path: Path) -> None:
    released_from = git(repo, "rev-parse", "HEAD").strip()
    result = run_act(
        repo,
        CD,
        event="workflow_dispatch",
        scratch=tmp_path / "act",
        timeout=TIMEOUT,
        extra_args=[
            "--var", f"IMAGE_REGISTRY={REGISTRY}",
            "--var", "KUBERNETES_CHECK=false",  # kind needs GitHub's runners
            "--secret", f"REGISTRY_USERNAME={USERNAME}",
            "--secret", f"REGISTRY_PASSWORD={PASSWORD}",
            "--secret", f'DOCS_ASSISTANT_SERVE__API_KEYS=["{API_KEY}"]',
            "--secret", f"LOADTEST_API_KEY={API_KEY}",
        ],
    )  # fmt: skip
    log = result.stdout
    assert result.returncode == 0, log[-10000:]
    assert "Session release was successful" in log
    assert "Session build_image was successful" in log
    # build once: the chain up to fine-tuning ran in the release job only; the image job trained nothing
    assert log.count("Session finetune was successful") == 1, log[-10000:]
    trained_in = {line.split("]", 1)[0] for line in log.splitlines() if "Session finetune was successful" in line}
    assert all("/release/" in job for job in trained_in), trained_in
    assert not [line for line in log.splitlines() if "/image/" in line.split("]", 1)[0] and "finetune" in line]

    # release.yml: the bump commit and the annotated tag reached the remote
    head = git(repo, "rev-parse", "HEAD").strip()
    assert git(repo, "rev-parse", "HEAD~1").strip() == released_from
    assert git(repo, "log", "-1", "--format=%s").startswith("bump: version 0.1.0 → 0.2.0")
    assert git(repo, "rev-parse", "v0.2.0^{commit}").strip() == head
    assert git(repo, "cat-file", "-t", "v0.2.0").strip() == "tag"  # annotated
    assert "## v0.2.0" in (repo / "CHANGELOG.md").read_text(encoding="utf-8")

    artifacts = tmp_path / "act" / "artifacts"
    released = json.loads((artifacts / "release-reports" / "release" / "manifest.json").read_text(encoding="utf-8"))
    assert (released["version"], released["tag"], released["tagged"], released["git_sha"]) == (
        "0.2.0",
        "v0.2.0",
        True,
        head,
    )

    # image.yml: built from the tag, pushed, and pinned in the manifest it received
    manifest = json.loads((artifacts / "image-reports" / "release" / "manifest.json").read_text(encoding="utf-8"))
    image = manifest["image"]
    assert (manifest["git_sha"], manifest["version"]) == (head, "0.2.0")
    assert image["digest"].startswith("sha256:")
    assert image["reference"] == f"{image['repository']}@{image['digest']}"
    assert image["repository"].startswith(f"{REGISTRY}/")
    assert f"outputs: digest={image['digest']} reference={image['reference']}" in log
    assert (artifacts / "attestations.txt").read_text(encoding="utf-8").split() == [
        f"{image['repository']}@{image['digest']}"
    ]

    # the registry serves that digest, and the image says which commit and version it is
    client.login(username=USERNAME, password=PASSWORD, registry=REGISTRY)
    remote = client.images.get_registry_data(image["reference"])
    assert remote.id == image["digest"]
    labels = client.images.get(image["reference"]).labels
    assert labels["org.opencontainers.image.revision"] == head
    assert labels["org.opencontainers.image.version"] == "0.2.0"
    assert labels["io.docs-assistant.adapter.sha256"] == released["adapter"]["hash"]  # what the release pinned
    assert labels["io.docs-assistant.adapter.version"] == str(released["adapter"]["version"])

    # deploy.yml, three times: the same digest in every environment, each gate passed, all in the manifest
    assert log.count("outputs: url=http://127.0.0.1:") >= len(ENVIRONMENTS)
    for name in ENVIRONMENTS:
        deployed = artifacts / f"deploy-{name}-reports"
        step = json.loads((deployed / "deploy" / name / "summary.json").read_text(encoding="utf-8"))
        assert step["state"] == "passed", step
        assert step["image"] == image["reference"]
        assert step["gate"]["measured"]["requests"] > 0
    assert log.count("gate=passed") >= len(ENVIRONMENTS)
    final = json.loads((artifacts / "deploy-prod-reports" / "release" / "manifest.json").read_text(encoding="utf-8"))
    assert final["image"]["digest"] == image["digest"]
    for name in ENVIRONMENTS:  # prod's artifact carries dev's and staging's gates on
        assert final["gates"][name]["passed"] is True, final["gates"][name]
        assert final["gates"][name]["image"] == image["reference"]
        assert final["deploys"][name]["state"] == "deployed"
