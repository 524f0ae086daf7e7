"""The release stage on real git repositories with real commitizen: versions, tags, refusals, the manifest."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from docs_assistant.cli import app
from docs_assistant.config import load_settings
from docs_assistant.errors import ConfigError, ReleaseError
from docs_assistant.release import load_manifest, run_release, update_manifest

from ..conftest import REPO, training_run  # noqa: TID252 - the repository root (its prompts), a registry run

pytestmark = pytest.mark.integration

PYPROJECT = """\
[project]
name = "demo"
version = "0.1.0"

[tool.commitizen]
name = "cz_conventional_commits"
version_provider = "pep621"
tag_format = "{prefix}$version"
update_changelog_on_bump = true
changelog_file = "CHANGELOG.md"
annotated_tag = true
major_version_zero = true
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def commit(repo: Path, message: str, name: str | None = None) -> str:
    path = repo / (name or f"file{len(list(repo.glob('file*')))}.txt")
    path.write_text(message + "\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_repo(root: Path, prefix: str = "v") -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    for key, value in (
        ("user.name", "Release Test"),
        ("user.email", "release@example.com"),
        ("commit.gpgsign", "false"),
        ("tag.gpgsign", "false"),
    ):
        git(root, "config", key, value)
    (root / "pyproject.toml").write_text(PYPROJECT.format(prefix=prefix), encoding="utf-8")
    (root / ".gitignore").write_text("/reports/\n/var/\n", encoding="utf-8")
    commit(root, "chore: start the project", "README.md")
    return root


def settings_for(repo: Path, **overrides: Any) -> Any:
    """The repo's settings; the image carries no adapter unless a test names an alias (it needs a registry)."""
    paths = {"prompts_dir": REPO / "prompts", "state_dir": repo / "var", "reports_dir": repo / "reports"}
    return load_settings(paths=paths, **({"image": {"adapter_alias": None}} | overrides))


def write_index(repo: Path) -> None:
    """The vector index a release requires (one chunk), where the repo's settings look for it."""
    import lancedb
    import pyarrow as pa

    store = settings_for(repo).paths.store_uri
    lancedb.connect(str(store)).create_table("chunks", data=pa.table({"id": ["c1"], "text": ["a chunk"]}))


def write_eval(repo: Path, passed: bool = True, failures: tuple[str, ...] = ()) -> Path:
    path = repo / "reports" / "eval_prompts" / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "stage": "eval_prompts",
        "passed": passed,
        "headline": {"answers.token_f1": 0.42},
        "failures": [{"message": m} for m in failures],
    }
    path.write_text(json.dumps(summary), encoding="utf-8")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A project with one non-bumping commit, a passed eval gate and an index."""
    made = make_repo(tmp_path / "repo")
    write_eval(made)
    write_index(made)
    return made


def version_of(repo: Path) -> str:
    return tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def state(repo: Path) -> tuple[str, str, str]:
    """HEAD, the tags and the version: a refused release changes none of them."""
    return git(repo, "rev-parse", "HEAD"), git(repo, "tag", "--list"), version_of(repo)


# -- real releases --------------------------------------------------------------------------------
@pytest.mark.parametrize(("message", "expected"), [("feat: answer in French", "0.2.0"), ("fix: trim answers", "0.1.1")])
def test_release_bumps_commits_tags_and_writes_the_changelog(repo: Path, message: str, expected: str) -> None:
    commit(repo, message)
    result = run_release(settings_for(repo), root=repo)

    tag = f"v{expected}"
    assert version_of(repo) == expected
    assert git(repo, "log", "-1", "--format=%s").startswith(f"bump: version 0.1.0 → {expected}")
    assert git(repo, "cat-file", "-t", tag) == "tag", "the tag is annotated"
    assert git(repo, "rev-parse", f"{tag}^{{commit}}") == git(repo, "rev-parse", "HEAD")
    changelog = (repo / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {tag} (" in changelog
    assert message.split(": ", 1)[1] in changelog
    assert git(repo, "status", "--porcelain") == "", "the bump commit holds every change it made"

    m = result.manifest
    assert (m["version"], m["previous_version"], m["tag"]) == (expected, "0.1.0", tag)
    assert m["tagged"] is True
    assert m["bumped"] is True
    assert m["dirty"] is False
    assert m["git_sha"] == git(repo, "rev-parse", "HEAD")
    assert m["created"].endswith("+00:00")
    assert m["changelog"] == "CHANGELOG.md"
    assert m["data"]["table_versions"] == {"chunks": 1}, "the tables the store holds, none invented"
    assert m["prompts"]["serving"]["id"] == "rag-answer"
    assert all(isinstance(h, str) and len(h) == 64 for h in m["prompts"]["hashes"].values())
    assert m["prompts"]["hashes"]["rag-answer@1"] == m["prompts"]["serving"]["hash"]
    assert m["model"] == {"backend": "local", "name": "tiny-random-llama", "revision": None}
    assert m["adapter"] is None, "the image carries no adapter here (image.adapter_alias unset)"
    assert m["eval"]["passed"] is True
    assert m["eval"]["headline"] == {"answers.token_f1": 0.42}
    assert m["image"] is None
    assert m["gates"] == {}
    assert load_manifest(repo / "reports" / "release" / "manifest.json") == m

    summary = json.loads((repo / "reports" / "release" / "summary.json").read_text(encoding="utf-8"))
    assert summary["stage"] == "release"
    assert (summary["version"], summary["tag"], summary["tagged"]) == (expected, tag, True)
    assert f"tagged {tag}" in (repo / "reports" / "release" / "summary.md").read_text(encoding="utf-8")


def test_the_next_release_counts_only_commits_since_the_last_tag(repo: Path) -> None:
    commit(repo, "feat: first feature")
    run_release(settings_for(repo), root=repo)
    before = state(repo)
    with pytest.raises(ReleaseError) as refused:
        run_release(settings_for(repo), root=repo)
    assert "nothing to release" in str(refused.value)
    assert "since tag v0.2.0" in str(refused.value)
    assert state(repo) == before

    commit(repo, "fix: a bug in the first feature")
    assert run_release(settings_for(repo), root=repo).manifest["version"] == "0.2.1"


def test_manifest_pins_the_feature_store_table_versions(repo: Path) -> None:
    import lancedb
    import pyarrow as pa

    from docs_assistant.data.store import FEATURE_TABLES, SCHEMAS, FeatureStore

    settings = settings_for(repo)
    store = FeatureStore(settings.paths.store_uri)
    for name in FEATURE_TABLES:
        store.ensure_table(name, SCHEMAS[name])
    chunks = lancedb.connect(str(settings.paths.store_uri)).open_table("chunks")  # the fixture's, version 1
    chunks.add(pa.table({"id": ["c2"], "text": ["another chunk"]}))
    commit(repo, "feat: index the docs")

    manifest = run_release(settings, root=repo).manifest

    versions = manifest["data"]["table_versions"]
    assert set(versions) == {"documents", "qa", "feedback", "chunks"}
    assert versions == {name: store.open(name).version for name in versions}
    assert versions["chunks"] == 2
    assert all(isinstance(v, int) for v in versions.values())


def test_manifest_pins_the_registry_champion(repo: Path, blank_registry_db: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    from docs_assistant.registry import CHAMPION, ModelRegistry, adapter_hash

    settings = settings_for(repo, image={"adapter_alias": CHAMPION})
    database = settings.paths.state_dir / "mlflow" / "mlflow.db"
    database.parent.mkdir(parents=True)
    shutil.copy(blank_registry_db, database)
    adapter = repo / "var" / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 2}', encoding="utf-8")
    save_file({"lora_A": np.ones((2, 4), dtype=np.float32)}, str(adapter / "adapter_model.safetensors"))
    registry = ModelRegistry(settings)
    digest = adapter_hash(adapter)
    run_id = registry.log_run(training_run(adapter))
    registry.set_alias(CHAMPION, registry.register(run_id, digest).version)
    commit(repo, "feat: ship the fine-tuned adapter")

    adapter_entry = run_release(settings, root=repo).manifest["adapter"]

    assert adapter_entry == {
        "registry": settings.registry.model_name,
        "alias": "champion",
        "version": 1,
        "hash": digest,
        "run_id": run_id,
    }


# -- refusals -------------------------------------------------------------------------------------
def test_dirty_tree_is_refused_naming_the_paths(repo: Path) -> None:
    commit(repo, "feat: something to release")
    (repo / "README.md").write_text("edited, not committed\n", encoding="utf-8")
    (repo / "notes.txt").write_text("untracked\n", encoding="utf-8")
    before = state(repo)
    with pytest.raises(ReleaseError) as refused:
        run_release(settings_for(repo), root=repo)
    message = str(refused.value)
    assert "uncommitted changes" in message
    assert "README.md" in message
    assert "notes.txt" in message
    assert "commit or stash" in message
    assert state(repo) == before
    assert not (repo / "reports" / "release").exists()


def test_failing_eval_gate_is_refused_and_can_be_waived(repo: Path) -> None:
    commit(repo, "feat: something to release")
    path = write_eval(repo, passed=False, failures=("answers.token_f1 0.10 < threshold 0.30", "safety regressed"))
    before = state(repo)
    with pytest.raises(ReleaseError) as refused:
        run_release(settings_for(repo), root=repo)
    message = str(refused.value)
    assert message.startswith(f"{path}: the eval gate failed: answers.token_f1 0.10 < threshold 0.30 (and 1 more)")
    assert "DOCS_ASSISTANT_RELEASE__REQUIRE_EVAL_GATE" in message
    assert state(repo) == before

    waived = run_release(settings_for(repo, release={"require_eval_gate": False}), root=repo)
    assert waived.manifest["tagged"] is True
    assert waived.manifest["eval"]["passed"] is False, "a waived gate is still recorded as it was"


def test_missing_eval_summary_is_refused_unless_not_required(repo: Path) -> None:
    commit(repo, "fix: something to release")
    path = repo / "reports" / "eval_prompts" / "summary.json"
    path.unlink()
    before = state(repo)
    with pytest.raises(ReleaseError) as refused:
        run_release(settings_for(repo), root=repo)
    assert str(refused.value).startswith(f"{path}: no eval gate result")
    assert "docs-assistant eval" in str(refused.value)
    assert state(repo) == before

    path.write_text('{"passed": "yes"}', encoding="utf-8")
    with pytest.raises(ReleaseError, match="no boolean 'passed'"):
        run_release(settings_for(repo), root=repo)
    path.unlink()

    released = run_release(settings_for(repo, release={"require_eval_gate": False}), root=repo)
    assert released.manifest["eval"] is None


def test_a_store_without_the_index_is_refused_naming_the_stage_that_makes_it(repo: Path) -> None:
    commit(repo, "feat: something to release")
    store = settings_for(repo).paths.store_uri
    shutil.rmtree(store / "chunks.lance")
    before = state(repo)
    with pytest.raises(ReleaseError) as refused:
        run_release(settings_for(repo), root=repo)
    message = str(refused.value)
    assert message.startswith(f"{store}: nothing to snapshot: the feature store has no 'chunks' table")
    assert message.endswith("(run `nox -x -s validate_data index` first, then release)"), message
    assert state(repo) == before, "a release runs no stage: it refuses, and changes nothing"
    assert not (repo / "reports" / "release").exists()


def test_no_adapter_under_the_alias_the_image_carries_is_refused(repo: Path, blank_registry_db: Path) -> None:
    from docs_assistant.registry import ModelRegistry

    commit(repo, "feat: something to release")
    settings = settings_for(repo, image={"adapter_alias": "champion"})
    before = state(repo)
    for registry in ("never created", "empty"):
        with pytest.raises(ReleaseError) as refused:
            run_release(settings, root=repo)
        message = str(refused.value)
        assert message.startswith("setting 'image.adapter_alias' (env DOCS_ASSISTANT_IMAGE__ADAPTER_ALIAS): ")
        assert "the model registry has no 'champion' adapter for the image to carry" in message, registry
        assert "nox -s finetune" in message
        assert "DOCS_ASSISTANT_IMAGE__ADAPTER_ALIAS=" in message
        assert state(repo) == before
        database = settings.paths.state_dir / "mlflow" / "mlflow.db"
        database.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(blank_registry_db, database)
    assert ModelRegistry(settings).versions() == [], "nothing was trained to fill the gap"

    released = run_release(settings_for(repo, image={"adapter_alias": ""}), root=repo)
    assert released.manifest["adapter"] is None, "an empty alias releases the base model alone"


def test_a_configured_adapter_path_is_pinned_by_its_hash(repo: Path, lora_adapters: list[Path]) -> None:
    from docs_assistant.registry import adapter_hash

    commit(repo, "feat: ship a local adapter")
    settings = settings_for(repo, model={"adapter_path": lora_adapters[0]}, image={"adapter_alias": "champion"})
    manifest = run_release(settings, root=repo, dry_run=True).manifest
    assert manifest["adapter"] == {
        "registry": None,
        "alias": None,
        "version": None,
        "hash": adapter_hash(lora_adapters[0]),
        "path": str(lora_adapters[0]),
    }


def test_existing_tag_is_refused(repo: Path) -> None:
    stray = commit(repo, "feat: tagged by hand")
    git(repo, "tag", "-a", "v0.2.0", "-m", "by hand")
    commit(repo, "fix: after the hand-made tag")
    before = state(repo)
    with pytest.raises(ReleaseError) as refused:
        run_release(settings_for(repo), root=repo)
    message = str(refused.value)
    assert "tag v0.2.0 already exists" in message
    assert stray[:12] in message
    assert "version is 0.1.0" in message
    assert "git tag -d v0.2.0" in message
    assert state(repo) == before


def test_no_conventional_commit_means_nothing_to_release(repo: Path) -> None:
    commit(repo, "docs: reword the README")
    commit(repo, "updated some things")  # not conventional at all
    before = state(repo)
    with pytest.raises(ReleaseError) as refused:
        run_release(settings_for(repo), root=repo)
    message = str(refused.value)
    assert "nothing to release: no conventional commit that bumps the version" in message
    assert "no release tag yet" in message
    assert "'feat: ...'" in message
    assert state(repo) == before


def test_not_a_git_repository_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # even where the temp dir sits inside a clone
    plain = tmp_path / "export"
    plain.mkdir()
    (plain / "pyproject.toml").write_text(PYPROJECT.format(prefix="v"), encoding="utf-8")
    with pytest.raises(ReleaseError) as refused:
        run_release(settings_for(plain), root=plain)
    assert str(refused.value).startswith(f"{plain}: not a git repository")
    assert "git clone" in str(refused.value)


def test_tag_format_must_match_the_tag_prefix_setting(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", prefix="release-")
    write_eval(repo)
    write_index(repo)
    commit(repo, "feat: a feature")
    with pytest.raises(ConfigError) as refused:
        run_release(settings_for(repo), root=repo)
    message = str(refused.value)
    assert "[tool.commitizen]" in message
    assert "'release-$version'" in message
    assert "release.tag_prefix" in message

    released = run_release(settings_for(repo, release={"tag_prefix": "release-"}), root=repo)
    assert released.manifest["tag"] == "release-0.2.0"
    assert git(repo, "cat-file", "-t", "release-0.2.0") == "tag"


# -- dry runs -------------------------------------------------------------------------------------
def test_dry_run_writes_an_untagged_manifest_and_changes_nothing(repo: Path) -> None:
    commit(repo, "feat: preview me")
    (repo / "README.md").write_text("work in progress\n", encoding="utf-8")  # a dry run tolerates this
    before = state(repo)

    result = run_release(settings_for(repo), root=repo, dry_run=True)

    assert state(repo) == before, "no commit, no tag, no version change"
    assert not (repo / "CHANGELOG.md").exists()
    m = load_manifest(result.manifest_path)
    assert (m["version"], m["tag"], m["tagged"], m["bumped"]) == ("0.2.0", "v0.2.0", False, True)
    assert m["git_sha"] == git(repo, "rev-parse", "HEAD") + "-dirty"
    assert m["dirty"] is True
    assert result.summary["dry_run"] is True
    assert "dry run: next version 0.2.0" in (result.report_dir / "summary.md").read_text(encoding="utf-8")


def test_dry_run_with_nothing_to_bump_reports_the_current_version(repo: Path) -> None:
    commit(repo, "chore: tidy up")
    m = run_release(settings_for(repo), root=repo, dry_run=True).manifest
    assert (m["version"], m["previous_version"], m["bumped"], m["tagged"]) == ("0.1.0", "0.1.0", False, False)
    assert m["dirty"] is False


# -- the manifest API -----------------------------------------------------------------------------
def test_update_manifest_merges_atomically_and_refuses_another_release(repo: Path) -> None:
    commit(repo, "feat: build me")
    path = run_release(settings_for(repo), root=repo, dry_run=True).manifest_path
    original = load_manifest(path)

    image = {"digest": "sha256:" + "a" * 64, "tags": ["v0.2.0"]}
    update_manifest(path, image=image, gates={"dev": {"passed": True}})
    merged = update_manifest(path, gates={"staging": {"passed": False}}, version=original["version"])
    assert merged["image"] == image
    assert merged["gates"] == {"dev": {"passed": True}, "staging": {"passed": False}}, "objects merge one level"
    assert load_manifest(path) == merged
    assert {k: merged[k] for k in original if k not in ("image", "gates")} == {
        k: v for k, v in original.items() if k not in ("image", "gates")
    }
    assert sorted(p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")) == [], "no half-written files"

    for field, other in (("version", "9.9.9"), ("git_sha", "0" * 40)):
        with pytest.raises(ReleaseError) as refused:
            update_manifest(path, **{field: other}, image=None)
        assert f"refusing to change {field} from {original[field]!r} to {other!r}" in str(refused.value)
        assert str(path) in str(refused.value)
    assert load_manifest(path) == merged, "a refused update writes nothing"


def test_load_manifest_names_a_missing_or_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "release" / "manifest.json"
    with pytest.raises(ReleaseError, match="no release manifest") as missing:
        load_manifest(path)
    assert str(path) in str(missing.value)
    path.parent.mkdir(parents=True)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ReleaseError, match="not valid JSON"):
        update_manifest(path, image=None)


# -- the CLI --------------------------------------------------------------------------------------
def test_cli_release_dry_run_then_release_then_a_refusal(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commit(repo, "feat: through the CLI")
    monkeypatch.chdir(repo)  # the CLI releases the checkout it runs in
    env = {"DOCS_ASSISTANT_PATHS__PROMPTS_DIR": str(REPO / "prompts"), "DOCS_ASSISTANT_IMAGE__ADAPTER_ALIAS": ""}

    previewed = CliRunner().invoke(app, ["release", "--dry-run"], env=env)
    assert previewed.exit_code == 0, previewed.output
    assert "dry run: next version 0.2.0 (tag v0.2.0); nothing committed or tagged" in previewed.output
    assert git(repo, "tag", "--list") == ""

    released = CliRunner().invoke(app, ["release"], env=env)
    assert released.exit_code == 0, released.output
    assert "tagged v0.2.0" in released.output
    assert load_manifest(repo / "reports" / "release" / "manifest.json")["tagged"] is True

    (repo / "README.md").write_text("edited after the release\n", encoding="utf-8")
    refused = CliRunner().invoke(app, ["release"], env=env)
    assert refused.exit_code == 2
    assert "error:" in refused.output
    assert "uncommitted changes: README.md" in refused.output
    assert "Traceback" not in refused.output
