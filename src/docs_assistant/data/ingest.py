"""Ingest: validated `data/` → feature-store tables, with the versions each run produced."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from docs_assistant.config import Settings
from docs_assistant.data.corpus import Corpus, load_corpus
from docs_assistant.data.store import DOCUMENTS, FEEDBACK, QA, SCHEMAS, FeatureStore, TableChange
from docs_assistant.reports import markdown_table, write_report

STAGE = "ingest"
LOG_NAME = "ingest_log.jsonl"


def ingest(settings: Settings, corpus: Corpus | None = None) -> dict[str, Any]:
    """Validate everything first (raises before any write), then sync each table."""
    corpus = corpus or load_corpus(settings.paths.data_dir)
    return ingest_rows(settings, [d.row() for d in corpus.documents], [q.row() for q in corpus.qa])


def ingest_rows(settings: Settings, documents: list[dict[str, Any]], qa: list[dict[str, Any]]) -> dict[str, Any]:
    """Sync already validated table rows (`Document.row()`, `QAPair.row()`): the validate stage builds its
    document rows straight from the values it checked, without a `Document` per page."""
    store = FeatureStore(settings.paths.store_uri)
    changes: list[TableChange] = [
        store.sync(DOCUMENTS, documents),
        store.sync(QA, qa),
        store.ensure_table(FEEDBACK, SCHEMAS[FEEDBACK]),
    ]
    summary = {
        "stage": STAGE,
        "store": str(store.uri),
        "changed": any(c.changed for c in changes),
        "tables": {c.table: c.as_dict() for c in changes},
        "table_versions": {c.table: c.version for c in changes},
        "counts": {"documents": len(documents), "qa": len(qa)},
    }
    if summary["changed"]:
        _append_log(settings, summary)
    rows = [(c.table, c.version, c.rows, c.inserted, c.updated, c.deleted) for c in changes]
    markdown = "## Ingest\n\n" + markdown_table(["table", "version", "rows", "inserted", "updated", "deleted"], rows)
    write_report(settings.paths.reports_dir, STAGE, summary, markdown + "\n")
    return summary


def _append_log(settings: Settings, summary: dict[str, Any]) -> None:
    """One line per ingest that committed something: the history of which data produced which versions."""
    entry = {"at": datetime.now(UTC).isoformat(), "table_versions": summary["table_versions"]}
    entry["changes"] = {name: t for name, t in summary["tables"].items() if t["changed"]}
    log = settings.paths.state_dir / LOG_NAME
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, sort_keys=True) + "\n")
