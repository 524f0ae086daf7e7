"""The feature store: versioned LanceDB tables `documents`, `qa` and `feedback`.

LanceDB versions every commit, so recording the version each ingest produced pins exactly what an index,
a fine-tune or a release was built from. An ingest compares content hashes first and commits nothing when
nothing changed; otherwise each table changes in one atomic `merge_insert` commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from docs_assistant.errors import StoreError

DOCUMENTS, QA, FEEDBACK = "documents", "qa", "feedback"
FEATURE_TABLES = (DOCUMENTS, QA, FEEDBACK)
QUARANTINE = "quarantine"  # invalid rows with their reasons, written by `docs-assistant validate`
CHUNKS = "chunks"  # the vector index, written by `docs-assistant index` (rag.index) from `documents`

#: the sessions that record a table, in order; no session `requires` another, so a stage that finds one
#: missing names the chain that records it
RECORDED_BY = {CHUNKS: ("validate_data", "index")}
DEFAULT_RECORDER = ("validate_data",)


def record_hint(table: str) -> str:
    """What to run when `table` is missing: the nox sessions that record it (CLI: validate, then index)."""
    sessions = RECORDED_BY.get(table, DEFAULT_RECORDER)
    flags = "-x -s" if len(sessions) > 1 else "-s"
    return f"run `nox {flags} {' '.join(sessions)}` first"


SCHEMAS: dict[str, pa.Schema] = {
    DOCUMENTS: pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("title", pa.string(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
            pa.field("path", pa.string(), nullable=False),
            pa.field("text", pa.string(), nullable=False),
            pa.field("content_hash", pa.string(), nullable=False),
        ]
    ),
    QA: pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("split", pa.string(), nullable=False),
            pa.field("question", pa.string(), nullable=False),
            pa.field("answer", pa.string(), nullable=False),
            pa.field("doc_ids", pa.list_(pa.string()), nullable=False),
            pa.field("content_hash", pa.string(), nullable=False),
        ]
    ),
    FEEDBACK: pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("answer_id", pa.string(), nullable=False),
            pa.field("rating", pa.int8(), nullable=False),
            pa.field("correction", pa.string()),
            pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("content_hash", pa.string(), nullable=False),
            # what the rated answer answered, filled in by the service: liked or corrected answers become training pairs
            pa.field("question", pa.string()),
            pa.field("answer", pa.string()),
        ]
    ),
    QUARANTINE: pa.schema(
        [
            pa.field("run_id", pa.string(), nullable=False),
            pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("kind", pa.string(), nullable=False),
            pa.field("file", pa.string(), nullable=False),
            pa.field("line", pa.int64()),
            pa.field("field", pa.string()),
            pa.field("check", pa.string(), nullable=False),
            pa.field("message", pa.string(), nullable=False),
            pa.field("raw", pa.string(), nullable=False),
        ]
    ),
}


@dataclass(frozen=True)
class TableChange:
    table: str
    version: int
    rows: int
    inserted: int = 0
    updated: int = 0
    deleted: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.deleted)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"changed": self.changed}


def _hint(uri: Path) -> str:
    return f"restore {uri} from a backup, or delete it and run `docs-assistant ingest` again"


class FeatureStore:
    """A LanceDB database directory; every failure to read it names the table and what to do."""

    def __init__(self, uri: Path):
        import lancedb

        self.uri = Path(uri)
        try:
            self.db = lancedb.connect(str(self.uri))
        except Exception as exc:  # lancedb raises several types for an unreadable directory
            raise StoreError(f"cannot open the feature store: {exc}", where=self.uri, hint=_hint(self.uri)) from None

    def table_names(self) -> list[str]:
        try:
            return sorted(self.db.list_tables().tables)
        except Exception as exc:
            raise StoreError(f"cannot list tables: {exc}", where=self.uri, hint=_hint(self.uri)) from None

    def has_table(self, name: str) -> bool:
        return name in self.table_names()

    def open(self, name: str, version: int | None = None) -> Any:
        """Open a table (at a pinned version if given) and prove it is readable before returning it."""
        where = self.uri / f"{name}.lance"
        if not self.has_table(name):
            raise StoreError(f"table '{name}' does not exist", where=where, hint=record_hint(name))
        try:
            table = self.db.open_table(name)
            if version is not None:
                table.checkout(version)
            table.count_rows()
            table.schema  # noqa: B018 - reading the schema touches the manifest and data files
        except Exception as exc:
            raise StoreError(f"table '{name}' is unreadable: {exc}", where=where, hint=_hint(self.uri)) from None
        return table

    def read(self, name: str, columns: Sequence[str] | None = None, version: int | None = None) -> pa.Table:
        table = self.open(name, version)
        try:
            data = table.to_arrow()
        except Exception as exc:
            raise StoreError(
                f"table '{name}' is unreadable: {exc}", where=self.uri / f"{name}.lance", hint=_hint(self.uri)
            ) from None
        return data.select(list(columns)) if columns else data

    def versions(self) -> dict[str, int]:
        return {name: self.open(name).version for name in self.table_names()}

    def ensure_table(self, name: str, schema: pa.Schema) -> TableChange:
        """Create an empty table if it is missing (the service appends to `feedback` later)."""
        if self.has_table(name):
            table = self.open(name)
            missing = [f for f in schema if f.name not in table.schema.names]
            if missing:  # a store written before these (nullable) columns existed: add them, empty
                if any(not f.nullable for f in missing):
                    raise StoreError(
                        f"table '{name}' lacks required columns {[f.name for f in missing]}",
                        where=self.uri / f"{name}.lance",
                        hint=_hint(self.uri),
                    )
                table.add_columns(missing)
            return TableChange(name, table.version, table.count_rows())
        table = self.db.create_table(name, schema=schema)
        return TableChange(name, table.version, 0)

    def sync(self, name: str, rows: list[dict[str, Any]], *, key: str = "id") -> TableChange:
        """Make the table hold exactly `rows`, in one commit, or in none when the content hashes match."""
        schema = SCHEMAS[name]
        incoming = pa.Table.from_pylist(rows, schema=schema)
        if not self.has_table(name):
            table = self.db.create_table(name, data=incoming, schema=schema)
            return TableChange(name, table.version, len(rows), inserted=len(rows))
        table = self.open(name)
        stored = table.count_rows()
        hashes = table.search().select([key, "content_hash"]).limit(max(stored, 1)).to_arrow()  # not the text columns
        current = dict(zip(hashes.column(key).to_pylist(), hashes.column("content_hash").to_pylist(), strict=True))
        wanted = {r[key]: r["content_hash"] for r in rows}
        if current == wanted:
            return TableChange(name, table.version, len(rows))
        inserted = len(wanted.keys() - current.keys())
        deleted = len(current.keys() - wanted.keys())
        updated = sum(1 for k in wanted.keys() & current.keys() if wanted[k] != current[k])
        (
            table.merge_insert(key)
            .when_matched_update_all(where="target.content_hash != source.content_hash")
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete()
            .execute(incoming)
        )
        return TableChange(name, table.version, len(rows), inserted=inserted, updated=updated, deleted=deleted)

    def append_new(self, name: str, rows: list[dict[str, Any]], *, key: str = "id") -> TableChange:
        """Insert rows whose key is new, in one commit; never update or delete (the service appends too)."""
        self.ensure_table(name, SCHEMAS[name])
        table = self.open(name)
        before = table.count_rows()
        known = set(table.search().select([key]).limit(max(before, 1)).to_arrow().column(key).to_pylist())
        new = [r for r in rows if r[key] not in known]
        if not new:
            return TableChange(name, table.version, before)
        table.merge_insert(key).when_not_matched_insert_all().execute(pa.Table.from_pylist(new, schema=SCHEMAS[name]))
        return TableChange(name, table.version, table.count_rows(), inserted=table.count_rows() - before)
