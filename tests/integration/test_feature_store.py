"""The feature store on real LanceDB: versions recorded, unchanged data writes nothing, bad data writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docs_assistant.data.ingest import ingest
from docs_assistant.data.store import DOCUMENTS, FEEDBACK, QA, FeatureStore
from docs_assistant.errors import InvalidDataError, StoreError

pytestmark = pytest.mark.integration


def lance_files(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_first_ingest_creates_versioned_tables_and_reports_them(project) -> None:
    settings = project.settings()
    summary = ingest(settings)
    assert set(summary["table_versions"]) == {DOCUMENTS, QA, FEEDBACK}
    store = FeatureStore(settings.paths.store_uri)
    assert store.versions() == summary["table_versions"]
    assert store.open(DOCUMENTS).count_rows() == summary["counts"]["documents"] > 0
    assert store.open(QA).count_rows() == summary["counts"]["qa"] > 0
    assert store.open(FEEDBACK).count_rows() == 0
    report_path = settings.paths.reports_dir / "ingest" / "summary.json"
    assert report_path.stat().st_mode & 0o777 == 0o644  # readable by other users (containers, CI)
    report = json.loads(report_path.read_text())
    assert report["table_versions"] == summary["table_versions"]
    assert (settings.paths.reports_dir / "ingest" / "summary.md").read_text().startswith("## Ingest")


def test_reingesting_unchanged_data_writes_nothing(project) -> None:
    settings = project.settings()
    first = ingest(settings)
    before = lance_files(settings.paths.store_uri)
    second = ingest(settings)
    assert second["changed"] is False
    assert second["table_versions"] == first["table_versions"]
    assert lance_files(settings.paths.store_uri) == before
    log = (settings.paths.state_dir / "ingest_log.jsonl").read_text().splitlines()
    assert len(log) == 1  # only the ingest that committed something is logged
    assert json.loads(log[0])["table_versions"] == first["table_versions"]


def test_a_changed_document_is_one_new_version_with_one_update(project) -> None:
    settings = project.settings()
    first = ingest(settings)
    path = next(iter(sorted((project.data / "docs").glob("*.md"))))
    path.write_text(path.read_text(encoding="utf-8") + "\nOne more sentence.\n", encoding="utf-8")
    second = ingest(settings)
    change = second["tables"][DOCUMENTS]
    assert change["version"] == first["table_versions"][DOCUMENTS] + 1
    assert (change["inserted"], change["updated"], change["deleted"]) == (0, 1, 0)
    assert second["tables"][QA]["changed"] is False
    # The old version stays readable: the store is a history, not a snapshot.
    store = FeatureStore(settings.paths.store_uri)
    old = store.read(DOCUMENTS, version=first["table_versions"][DOCUMENTS]).to_pylist()
    assert "One more sentence." not in "".join(r["text"] for r in old)


def test_a_removed_document_is_deleted(project) -> None:
    settings = project.settings()
    ingest(settings)
    victim = sorted((project.data / "docs").glob("*.md"))[-1]
    qa_dir = project.data / "qa"
    for split in ("train", "eval"):  # drop QA pairs citing it, or validation (rightly) refuses
        path = qa_dir / f"{split}.jsonl"
        lines = [ln for ln in path.read_text().splitlines() if victim.stem not in json.loads(ln)["doc_ids"]]
        path.write_text("\n".join(lines) + "\n")
    victim.unlink()
    summary = ingest(settings)
    assert summary["tables"][DOCUMENTS]["deleted"] == 1


def test_invalid_data_leaves_tables_untouched(project) -> None:
    settings = project.settings()
    first = ingest(settings)
    before = lance_files(settings.paths.store_uri)
    (project.data / "docs" / "broken.md").write_text("---\ntitle: no id\nsource: x.md\n---\nbody\n")
    with pytest.raises(InvalidDataError, match="'id'"):
        ingest(settings)
    assert lance_files(settings.paths.store_uri) == before
    assert FeatureStore(settings.paths.store_uri).versions() == first["table_versions"]


def test_corrupt_table_is_a_clear_store_error(project) -> None:
    settings = project.settings()
    ingest(settings)
    table_dir = settings.paths.store_uri / f"{DOCUMENTS}.lance"
    for manifest in (table_dir / "_versions").iterdir():
        manifest.write_bytes(b"not a lance manifest")
    with pytest.raises(StoreError) as err:
        FeatureStore(settings.paths.store_uri).open(DOCUMENTS)
    assert "documents" in str(err.value)
    assert str(settings.paths.store_uri) in str(err.value)
    assert "restore" in str(err.value)
    # The other tables are still intact and readable.
    assert FeatureStore(settings.paths.store_uri).open(QA).count_rows() > 0
