"""The release stage: refuse what must not be released, then bump, tag and pin the release in a manifest.

`run_release` is what `docs-assistant release` and the `release` nox session call. A release snapshots
recorded state and makes none: the eval gate's verdict, the feature store's table versions, the registry's
adapter. Training and indexing are upstream stages, so a missing record is refused with the command that
makes it, never recomputed here. Everything that can refuse (the git tree, those records, the next
version and its tag) and everything the manifest records is read before commitizen commits and tags, so a
refusal leaves the repository as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docs_assistant.config import Settings
from docs_assistant.errors import ReleaseError
from docs_assistant.io import atomic_write_json
from docs_assistant.lineage import git_sha, table_versions
from docs_assistant.release import git, versioning
from docs_assistant.release.manifest import STAGE, manifest_path
from docs_assistant.reports import markdown_table, write_report

Progress = Callable[[str], None]
EVAL_STAGE = "eval_prompts"  # docs_assistant.evals.report.STAGE, without importing the eval runner
GATE_SETTING = "release.require_eval_gate=false (env DOCS_ASSISTANT_RELEASE__REQUIRE_EVAL_GATE=false)"
SHOWN_PATHS = 20


@dataclass
class ReleaseResult:
    manifest: dict[str, Any]
    summary: dict[str, Any]
    manifest_path: Path
    report_dir: Path


def eval_gate(settings: Settings) -> dict[str, Any] | None:
    """The eval stage's verdict and headline; refuses a failed or missing gate unless it is not required."""
    path = settings.paths.reports_dir / EVAL_STAGE / "summary.json"
    required = settings.release.require_eval_gate
    if not path.is_file():
        if not required:
            return None
        raise ReleaseError(
            "no eval gate result: the prompt evals have not run",
            where=path,
            hint=f"run `docs-assistant eval` (nox -s eval_prompts) first, or set {GATE_SETTING}",
        )
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReleaseError(
            f"the eval summary is not valid JSON: {exc}", where=path, hint="run `docs-assistant eval` again"
        ) from None
    passed = summary.get("passed") if isinstance(summary, dict) else None
    if not isinstance(passed, bool):
        raise ReleaseError(
            f"the eval summary has no boolean 'passed' (got {passed!r})",
            where=path,
            hint="run `docs-assistant eval` again",
        )
    failures = [f.get("message", str(f)) if isinstance(f, dict) else str(f) for f in summary.get("failures") or []]
    if required and not passed:
        first = (
            f": {failures[0]}" + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else "") if failures else ""
        )
        raise ReleaseError(
            f"the eval gate failed{first}",
            where=path,
            hint=f"fix the failing evals and run `docs-assistant eval` again; to release anyway set {GATE_SETTING}",
        )
    return {"passed": passed, "headline": summary.get("headline") or {}, "failures": failures, "summary": str(path)}


def prompt_hashes(settings: Settings) -> dict[str, Any]:
    """Every prompt's content hash by `id@version`, and the one the service renders."""
    from docs_assistant.rag.prompts import PromptRegistry

    prompts = PromptRegistry.load(settings.paths.prompts_dir)
    serving = prompts.get(settings.prompt.id, settings.prompt.version)
    return {
        "serving": serving.ref,
        "hashes": {f"{p.id}@{p.version}": p.hash for p in sorted(prompts, key=lambda p: (p.id, p.version))},
    }


def data_snapshot(settings: Settings) -> dict[str, Any]:
    """The feature store's table versions; refuses a store without the vector index the image will carry."""
    from docs_assistant.data.store import CHUNKS, record_hint  # pyarrow: kept out of `docs-assistant --help`

    store = settings.paths.store_uri
    tables = table_versions(store) or {}
    if CHUNKS not in tables:
        raise ReleaseError(
            f"nothing to snapshot: the feature store has no {CHUNKS!r} table (the vector index)",
            where=store,
            hint=record_hint(CHUNKS) + ", then release",
        )
    return {"store": str(store), "table_versions": tables}


def released_adapter(settings: Settings) -> dict[str, Any] | None:
    """The adapter the image will carry, pinned by registry version and hash (or by path and hash).

    None when no adapter is configured. A configured alias that the registry does not hold is refused:
    the release would pin nothing for `build_image` to package, and nothing downstream may train one.
    """
    from docs_assistant.registry.resolve import shipped_adapter_alias

    alias, setting = shipped_adapter_alias(settings)
    if alias is None:
        path = settings.model.adapter_path
        if path is None:
            return None
        from docs_assistant.registry.hashing import adapter_hash

        return {"registry": None, "alias": None, "version": None, "hash": adapter_hash(path), "path": str(path)}
    from docs_assistant.registry import ModelRegistry

    registry = ModelRegistry(settings)
    info = registry.get(alias)  # an embedded registry never created answers None, no mlflow
    if info is None:
        raise ReleaseError(
            f"the model registry has no {alias!r} adapter for the image to carry "
            f"(registry at {registry.backend.tracking_uri})",
            where=setting,
            hint="run `nox -s finetune` (it registers an adapter and promotes a better one), "
            f"or `docs-assistant registry promote <version> --alias {alias}`; "
            "to release the base model alone set image.adapter_alias to '' (env DOCS_ASSISTANT_IMAGE__ADAPTER_ALIAS=)",
        )
    return {
        "registry": info.name,
        "alias": alias,
        "version": info.version,
        "hash": info.adapter_hash,
        "run_id": info.run_id,
    }


def _nothing_to_release(top: Path, tag: str) -> ReleaseError:
    since = f"since tag {tag}" if git.tag_exists(top, tag) else "in the history (no release tag yet)"
    return ReleaseError(
        f"nothing to release: no conventional commit that bumps the version {since}",
        where=top,
        hint="commit with a conventional message such as 'fix: ...' or 'feat: ...' "
        "(https://www.conventionalcommits.org), or use --dry-run to see the current version",
    )


def run_release(
    settings: Settings, *, root: Path | None = None, dry_run: bool = False, progress: Progress | None = None
) -> ReleaseResult:
    """Release the commit checked out in `root` (default: the working directory), or with `dry_run` preview it."""
    say = progress or (lambda _msg: None)
    prefix = settings.release.tag_prefix
    top = git.toplevel(Path(root or Path.cwd()))
    versioning.check_config(top, prefix)
    dirty = git.dirty_paths(top)
    if dirty and not dry_run:
        shown = ", ".join(dirty[:SHOWN_PATHS]) + (
            f" (and {len(dirty) - SHOWN_PATHS} more)" if len(dirty) > SHOWN_PATHS else ""
        )
        raise ReleaseError(
            f"the working tree has uncommitted changes: {shown}",
            where=top,
            hint="a release is an exact snapshot of a commit: commit or stash them (git stash -u), "
            "or preview with --dry-run",
        )
    evals = eval_gate(settings)

    current, upcoming = versioning.versions(top)
    say(f"version {current}; the commits since its tag call for {upcoming or 'no bump'}")
    if upcoming is None and not dry_run:
        raise _nothing_to_release(top, prefix + current)
    version = upcoming or current
    tag = prefix + version
    if upcoming is not None and git.tag_exists(top, tag):
        raise ReleaseError(
            f"tag {tag} already exists (on {git.tag_commit(top, tag)[:12]}), but the project's version is {current}",
            where=top / "pyproject.toml",
            hint=f"set [project] version to the latest released version, or delete the stray tag (git tag -d {tag})",
        )

    lineage = {
        "data": data_snapshot(settings),
        "prompts": prompt_hashes(settings),
        "model": {
            "backend": settings.model.backend,
            "name": settings.model.name,
            "revision": settings.model.revision,
        },
        "adapter": released_adapter(settings),
    }
    changelog = settings.release.changelog
    if not dry_run:
        say(f"bumping {current} -> {version}, updating {changelog}, tagging {tag}")
        versioning.bump(top, changelog)
        if not git.tag_is_annotated(top, tag) or git.tag_commit(top, tag) != git.head_sha(top):
            raise ReleaseError(
                f"commitizen did not create the annotated tag {tag} on HEAD", where=top, hint="check `git tag -n`"
            )

    sha = git_sha(top)
    manifest: dict[str, Any] = {
        "version": version,
        "previous_version": current,
        "tag": tag,
        "tagged": not dry_run,
        "bumped": upcoming is not None,
        "git_sha": sha,
        "dirty": sha.endswith("-dirty"),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "changelog": str(changelog),
        **lineage,
        "eval": evals,
        "image": None,  # the image stage records {digest, tags, ...}
        "gates": {},  # each deployment records its gate results under its environment
    }
    path = manifest_path(settings.paths.reports_dir)
    atomic_write_json(path, manifest)
    summary = {"stage": STAGE, "dry_run": dry_run, "manifest": str(path)} | {
        k: manifest[k] for k in ("version", "previous_version", "tag", "tagged", "bumped", "git_sha", "dirty")
    }
    report_dir = write_report(settings.paths.reports_dir, STAGE, summary, markdown(manifest, dry_run))
    return ReleaseResult(manifest, summary, path, report_dir)


def markdown(manifest: dict[str, Any], dry_run: bool) -> str:
    if dry_run:
        state = f"dry run: next version {manifest['version']}" if manifest["bumped"] else "dry run: nothing to bump"
    else:
        state = f"tagged {manifest['tag']}"
    adapter = manifest["adapter"]
    evals = manifest["eval"]
    tables = manifest["data"]["table_versions"]
    rows = [
        (
            "version",
            f"{manifest['previous_version']} → {manifest['version']}" if manifest["bumped"] else manifest["version"],
        ),
        ("tag", f"`{manifest['tag']}`" + ("" if manifest["tagged"] else " (not created)")),
        ("commit", f"`{manifest['git_sha']}`"),
        ("data tables", ", ".join(f"{k} v{v}" for k, v in tables.items()) if tables else "no feature store"),
        ("prompt", "{id} v{version} `{hash:.12}`".format(**manifest["prompts"]["serving"])),
        ("base model", f"{manifest['model']['name']} @ {manifest['model']['revision'] or 'unpinned'}"),
        ("adapter", _adapter_cell(adapter)),
        ("eval gate", ("passed" if evals["passed"] else "FAILED") if evals else "not run (not required)"),
    ]
    return f"## Release: {state}\n\n{markdown_table(['', 'released'], rows)}\n"


def _adapter_cell(adapter: dict[str, Any] | None) -> str:
    if adapter is None:
        return "none"
    source = f"{adapter['registry']} v{adapter['version']}" if adapter.get("version") else f"`{adapter['path']}`"
    return f"{source} `{adapter['hash'][:12]}`"
