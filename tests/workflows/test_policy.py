"""The workflows and the setup action: schema-valid, zizmor-clean, and written to the security policy."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import (
    REPO,
    SHA,
    STANDINS,
    WORKFLOWS_REPO,
    interface_markdown,
    pinned_actions,
    uses_lines,
    workflow_files,
)

pytestmark = pytest.mark.workflows

GITHUB = REPO / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
ACTIONS = sorted((GITHUB / "actions").glob("*/action.yml"))
VERSION_COMMENT = re.compile(r"^v\d+\.\d+\.\d+$")
EXPRESSION_IN_RUN = re.compile(r"\$\{\{")


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def triggers(path: Path) -> dict[str, Any]:
    data = load(path)
    on = data.get(True, data.get("on"))  # YAML 1.1 reads a bare `on` as True
    return on if isinstance(on, dict) else dict.fromkeys([on] if isinstance(on, str) else on)


REUSABLE = [p for p in WORKFLOWS if "workflow_call" in triggers(p)]

#: the only write grants: posting the eval report on a pull request, from a job that runs no checked-out code,
#: and pushing the release's bump commit and tag, or the rendered template (one explicit push each; checkout
#: keeps no credentials)
WRITE_GRANTS = {
    ("release.yml", "release"): {"contents": "write"},
    ("template.yml", "publish"): {"contents": "write"},  # push the rendered template's branch and tag
    # push to GHCR, and sign + store the build provenance attestation of the pushed digest
    ("image.yml", "image"): {"contents": "read", "packages": "write", "id-token": "write", "attestations": "write"},
    ("cd.yml", "release"): {"contents": "write"},  # callers grant what the called workflow's job needs
    ("cd.yml", "image"): {"contents": "read", "packages": "write", "id-token": "write", "attestations": "write"},
    ("prompt-evals.yml", "comment"): {"pull-requests": "write"},
    ("ci.yml", "prompt-evals"): {"contents": "read", "pull-requests": "write"},  # the caller bounds the callee
    ("deploy.yml", "deploy"): {"contents": "read", "packages": "read"},  # pull the image from GHCR
    ("deploy.yml", "kubernetes"): {"contents": "read", "packages": "read"},
    **{("cd.yml", f"deploy-{env}"): {"contents": "read", "packages": "read"} for env in ("dev", "staging", "prod")},
    ("drift.yml", "drift"): {"contents": "read", "issues": "write"},  # open or update the drift issue
}
#: reusable workflows whose nox session (and report directory) is not named like the file (the issues fixed the names)
SESSION = {
    "data-validation": "validate_data",
    "prompt-evals": "eval_prompts",
    "finetune": "finetune",
    "image": "build_image",
}


def steps_of(path: Path) -> list[dict[str, Any]]:
    data = load(path)
    if "runs" in data:
        return data["runs"].get("steps", [])
    return [step for job in data["jobs"].values() for step in job.get("steps", [])]


def tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed")
    return found


def test_the_stage_workflows_exist() -> None:
    assert {p.stem for p in REUSABLE} >= {"lint", "tests", "index", "data-validation", "prompt-evals"}
    assert (GITHUB / "workflows" / "ci.yml").is_file()
    assert ACTIONS == [GITHUB / "actions" / "setup" / "action.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(path: Path) -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: p.parent.name)
def test_action_matches_the_github_schema(path: Path) -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_stand_ins_and_the_fixture_workflow_match_the_schema() -> None:
    here = Path(__file__).parent
    for schema, paths in (
        ("vendor.github-actions", sorted((here / "actions").glob("*/*/action.yml"))),
        ("vendor.github-workflows", sorted((here / "fixture_repo" / ".github" / "workflows").glob("*.yml"))),
    ):
        result = subprocess.run(
            [tool("check-jsonschema"), "--builtin-schema", schema, *map(str, paths)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_at_medium_or_above() -> None:
    result = subprocess.run(
        [
            tool("zizmor"),
            "--offline",
            "--min-severity",
            "medium",
            "--config",
            str(GITHUB / "zizmor.yml"),
            "--no-progress",
            "--color",
            "never",
            str(GITHUB),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_grants_nothing_at_the_top(path: Path) -> None:
    data = load(path)
    assert data.get("permissions") == {}, f"{path.name}: top-level `permissions: {{}}`, grants per job"
    for name, job in data["jobs"].items():
        granted = job.get("permissions", {})
        allowed = [{}, {"contents": "read"}, WRITE_GRANTS.get((path.name, name))]
        assert granted in allowed, f"{path.name}: job {name} grants {granted}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_pull_request_target(path: Path) -> None:
    assert "pull_request_target" not in triggers(path)
    assert "pull_request_target" not in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", [*WORKFLOWS, *ACTIONS], ids=lambda p: p.parent.name + "/" + p.name)
def test_third_party_actions_are_pinned_by_sha_with_a_version_comment(path: Path) -> None:
    for match in uses_lines(path):
        target, ref, comment = match["target"], match["ref"], match["comment"]
        if target.startswith("./") or target.startswith(WORKFLOWS_REPO + "/"):
            continue  # this repository's own workflows and action: callers pin its release tag
        assert SHA.match(ref), f"{path.name}: {target}@{ref} is not pinned to a full commit SHA"
        assert comment, f"{path.name}: {target}@{ref} needs a `# vX.Y.Z` comment"
        assert VERSION_COMMENT.match(comment.strip()), f"{path.name}: {target}@{ref} # {comment}: want `# vX.Y.Z`"


def test_one_sha_per_action_and_a_stand_in_for_each() -> None:
    pins = pinned_actions(workflow_files(REPO))
    repos = [repo for repo, _ in pins]
    assert len(repos) == len(set(repos)), f"an action is pinned to two SHAs: {sorted(pins)}"
    for repo, _ in pins:
        assert (STANDINS / repo / "action.yml").is_file(), f"no act stand-in for {repo}"


def test_own_action_is_called_at_one_ref() -> None:
    refs = {m["ref"] for p in REUSABLE for m in uses_lines(p) if m["target"].startswith(WORKFLOWS_REPO + "/")}
    assert len(refs) == 1, f"the reusable workflows call {WORKFLOWS_REPO} at several refs: {refs}"


@pytest.mark.parametrize("path", [*WORKFLOWS, *ACTIONS], ids=lambda p: p.parent.name + "/" + p.name)
def test_every_checkout_drops_its_credentials(path: Path) -> None:
    for step in steps_of(path):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert (step.get("with") or {}).get("persist-credentials") is False, f"{path.name}: {step}"


@pytest.mark.parametrize("path", [*WORKFLOWS, *ACTIONS], ids=lambda p: p.parent.name + "/" + p.name)
def test_expressions_reach_shell_only_through_env(path: Path) -> None:
    for step in steps_of(path):
        if "run" in step:
            assert not EXPRESSION_IN_RUN.search(step["run"]), f"{path.name}: move ${{{{ }}}} from run: into env:"


@pytest.mark.parametrize("path", REUSABLE, ids=lambda p: p.name)
def test_reusable_workflow_interface_is_documented(path: Path) -> None:
    call = triggers(path)["workflow_call"] or {}
    for name, spec in (call.get("inputs") or {}).items():
        missing = {"description", "type", "required"} - spec.keys()
        assert not missing, f"{path.name}: input {name} lacks {sorted(missing)}"
        if not spec["required"]:
            assert "default" in spec, f"{path.name}: optional input {name} needs a default"
    for name, spec in (call.get("outputs") or {}).items():
        assert {"description", "value"} <= spec.keys(), f"{path.name}: output {name}"
    for name, spec in (call.get("secrets") or {}).items():
        assert {"description", "required"} <= spec.keys(), f"{path.name}: secret {name}"


@pytest.mark.parametrize("path", REUSABLE, ids=lambda p: p.name)
def test_reusable_workflow_runs_its_nox_session_and_publishes_the_summary(path: Path) -> None:
    session = SESSION.get(path.stem, path.stem)
    jobs = [job.get("steps", []) for job in load(path)["jobs"].values()]
    runs_nox = [
        s for s in jobs if any(f"nox -s {session}" in x.get("run", "") or f'"{session}"' in x.get("run", "") for x in s)
    ]
    assert len(runs_nox) == 1, f"{path.name}: one job runs nox -s {session}"
    summary = runs_nox[0][-1]
    assert summary.get("if", "").startswith("always()"), f"{path.name}: the last step publishes the summary"
    assert f"reports/{session}/" in summary["run"]  # deploy's summaries are per environment: reports/deploy/<env>/
    assert "summary.md" in summary["run"]
    assert "concurrency" not in load(path), "a called workflow shares the caller's concurrency group: deadlock"


def test_ci_calls_the_stage_workflows_and_gates_on_all_green() -> None:
    ci = load(GITHUB / "workflows" / "ci.yml")
    assert set(triggers(GITHUB / "workflows" / "ci.yml")) == {"push", "pull_request"}
    assert ci["concurrency"]["cancel-in-progress"] is True
    text = (GITHUB / "workflows" / "ci.yml").read_text(encoding="utf-8")
    for stage in ("lint", "tests", "data-validation"):
        # the template hook rewrites exactly this form into OWNER/REPO/.github/workflows/<stage>.yml@REF
        assert re.search(rf"^    uses: \./\.github/workflows/{stage}\.yml$", text, re.M), stage
    gate = ci["jobs"]["all-green"]
    assert gate["if"] == "always()"
    assert set(gate["needs"]) == set(ci["jobs"]) - {"all-green"}
    assert gate["steps"][-1]["uses"].startswith("re-actors/alls-green@")


def test_setup_action_pins_match_noxw() -> None:
    """The workflows install the same uv and nox as ./noxw does on a laptop."""
    noxw = (REPO / "noxw").read_text(encoding="utf-8")
    inputs = load(GITHUB / "actions" / "setup" / "action.yml")["inputs"]
    for tool_name, variable in (("uv", "UV_VERSION"), ("nox", "NOX_VERSION")):
        pinned = re.search(rf'^{variable} = "([^"]+)"', noxw, re.M)
        assert pinned, variable
        assert inputs[f"{tool_name}-version"]["default"] == pinned[1], f"{tool_name}: action and noxw differ"
    uv = re.search(r'^UV_VERSION = "([^"]+)"', noxw, re.M)
    assert uv
    for path in WORKFLOWS:  # a caller that runs the project without nox (train.yml's check) pins uv itself
        for step in steps_of(path):
            if str(step.get("uses", "")).startswith("astral-sh/setup-uv@"):
                assert (step.get("with") or {}).get("version") == uv[1], f"{path.name}: uv differs from noxw"


@pytest.mark.parametrize("path", REUSABLE, ids=lambda p: p.name)
def test_readme_documents_the_interface_as_the_workflow_declares_it(path: Path) -> None:
    readme = (GITHUB / "workflows" / "README.md").read_text(encoding="utf-8")
    table = interface_markdown(path)
    assert f"### `{path.name}`\n\n{table}\n" in readme, f"paste under ### `{path.name}`:\n\n{table}\n"
