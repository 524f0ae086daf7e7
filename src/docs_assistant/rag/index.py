"""Build the vector index incrementally: only documents whose content hash changed are re-embedded.

Rows use the layout of llama-index's `LanceDBVectorStore` (id, doc_id, vector, text, metadata), so the
table opens as a llama-index vector store. Each build changes the table in one atomic `merge_insert`
commit (or, when the embedding dimension changes, one overwrite), so a failed build leaves the previous
index readable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from docs_assistant.config import Settings
from docs_assistant.data.corpus import Document
from docs_assistant.data.store import CHUNKS, DOCUMENTS, FeatureStore
from docs_assistant.errors import StoreError
from docs_assistant.io import sha256_text
from docs_assistant.reports import markdown_table, write_report

STAGE = "index"
Progress = Callable[[int, int], None]


@dataclass
class IndexResult:
    documents: int = 0
    documents_embedded: int = 0
    documents_removed: int = 0
    chunks: int = 0
    chunks_embedded: int = 0
    chunks_deleted: int = 0
    rebuilt: bool = False
    ann_index: bool = False
    table_version: int = 0
    source_versions: dict[str, int] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.documents_embedded or self.documents_removed)


def doc_hash(doc_content_hash: str, fingerprint: dict[str, Any]) -> str:
    """A document is re-embedded when its text or the embedding/chunking settings change."""
    return sha256_text(doc_content_hash, json.dumps(fingerprint, sort_keys=True))


def _documents(store: FeatureStore) -> tuple[list[Document], int]:
    table = store.open(DOCUMENTS)
    rows = table.to_arrow().to_pylist()
    docs = [Document(r["id"], r["title"], r["source"], r["text"], r["path"]) for r in rows]
    return docs, table.version


def indexed_hashes(store: FeatureStore) -> dict[str, str]:
    """doc_id → doc_hash of what the vector table holds now."""
    if not store.has_table(CHUNKS):
        return {}
    data = store.read(CHUNKS, ["doc_id", "metadata"])
    return {
        doc_id: meta["doc_hash"]
        for doc_id, meta in zip(data.column("doc_id").to_pylist(), data.column("metadata").to_pylist(), strict=True)
    }


def _rows(nodes: list[Any], vectors: list[list[float]], dim: int) -> pa.Table:
    from llama_index.core.schema import MetadataMode
    from llama_index.core.vector_stores.utils import node_to_metadata_dict

    records = [
        {
            "id": node.node_id,
            "doc_id": node.ref_doc_id,
            "vector": vector,
            "text": node.get_content(metadata_mode=MetadataMode.NONE),
            "metadata": node_to_metadata_dict(node, remove_text=False, flat_metadata=True),
        }
        for node, vector in zip(nodes, vectors, strict=True)
    ]
    table = pa.Table.from_pylist(records)
    vector_type = pa.list_(pa.float32(), dim)
    return table.set_column(table.schema.get_field_index("vector"), "vector", table.column("vector").cast(vector_type))


def build_index(settings: Settings, *, embedder: Any = None, progress: Progress | None = None) -> IndexResult:
    from docs_assistant.rag.chunking import chunk_documents
    from docs_assistant.rag.embeddings import embedder_tokenizer, embedding_dimension, load_embedder

    store = FeatureStore(settings.paths.store_uri)
    docs, docs_version = _documents(store)
    fingerprint = settings.fingerprint
    result = IndexResult(documents=len(docs), source_versions={DOCUMENTS: docs_version}, fingerprint=fingerprint)
    wanted = {d.id: doc_hash(d.content_hash, fingerprint) for d in docs}
    current = indexed_hashes(store)
    stale = [d for d in docs if current.get(d.id) != wanted[d.id]]
    removed = sorted(current.keys() - wanted.keys())
    if not stale and not removed:
        table = store.open(CHUNKS)
        if settings.retrieval.ann_index and not table.list_indices():
            _build_ann_index(table, settings)
        result.ann_index = bool(table.list_indices())
        result.chunks, result.table_version = table.count_rows(), table.version
        return result

    embedder = embedder or load_embedder(settings.embedding)
    dim = embedding_dimension(embedder)
    nodes = chunk_documents([(d, wanted[d.id]) for d in stale], settings.chunking, embedder_tokenizer(embedder))
    texts = [n.get_content(metadata_mode="embed") for n in nodes]
    vectors: list[list[float]] = []
    batch = settings.embedding.batch_size
    for start in range(0, len(texts), batch):
        vectors += embedder.get_text_embedding_batch(texts[start : start + batch])
        if progress:
            progress(min(start + batch, len(texts)), len(texts))
    kept = _chunks_kept(store, {d.id for d in stale} | set(removed))
    _validate(settings, nodes, vectors, dim, docs, embedder, len(nodes) + kept)
    rows = _rows(nodes, vectors, dim) if nodes else None

    result.documents_embedded, result.documents_removed = len(stale), len(removed)
    result.chunks_embedded = len(nodes)
    touched = sorted({d.id for d in stale} | set(removed))
    existing_dim = _existing_dimension(store)
    if existing_dim is None or existing_dim != dim:
        table = store.db.create_table(CHUNKS, data=rows, mode="overwrite")
        result.rebuilt = True
    else:
        table = store.open(CHUNKS)
        before = table.count_rows()
        quoted = ", ".join("'" + t.replace("'", "''") + "'" for t in touched)
        if not nodes:  # only removals: one delete commit
            table.delete(f"doc_id IN ({quoted})")
            result.chunks_deleted = before - table.count_rows()
            result.chunks, result.table_version = table.count_rows(), table.version
            return result
        (
            table.merge_insert("id")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete(f"doc_id IN ({quoted})")
            .execute(rows)
        )
        result.chunks_deleted = before + len(nodes) - table.count_rows()
    if settings.retrieval.ann_index:
        _build_ann_index(table, settings)
        result.ann_index = True
    result.chunks, result.table_version = table.count_rows(), table.version
    return result


def _chunks_kept(store: FeatureStore, touched: set[str]) -> int:
    """Chunks of documents this build leaves alone."""
    if not store.has_table(CHUNKS):
        return 0
    doc_ids = store.read(CHUNKS, ["doc_id"]).column("doc_id").to_pylist()
    return sum(1 for d in doc_ids if d not in touched)


def _validate(
    settings: Settings,
    nodes: list[Any],
    vectors: list[list[float]],
    dim: int,
    docs: list[Document],
    embedder: Any,
    index_chunks: int,
) -> None:
    """Chunks and vectors pass their contracts before anything is written (raises, quarantining, if not)."""
    from llama_index.core.schema import MetadataMode

    from docs_assistant.data.chunks import validate_chunks
    from docs_assistant.rag.embeddings import embedder_tokenizer

    tokenizer = embedder_tokenizer(embedder)
    texts = [n.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
    validate_chunks(
        settings,
        [{"id": n.node_id, "doc_id": n.ref_doc_id, "text": t} for n, t in zip(nodes, texts, strict=True)],
        vectors,
        dimension=dim,
        doc_paths={d.id: d.path for d in docs},
        token_counts=[len(tokenizer.tokenize(t)) for t in texts],
        index_chunks=index_chunks,
    )


def _existing_dimension(store: FeatureStore) -> int | None:
    if not store.has_table(CHUNKS):
        return None
    vector_type = store.open(CHUNKS).schema.field("vector").type
    return getattr(vector_type, "list_size", None)


def _build_ann_index(table: Any, settings: Settings) -> None:
    rows = table.count_rows()
    retrieval = settings.retrieval
    if rows < retrieval.num_partitions * 16:
        raise StoreError(
            f"{rows} chunks are too few for an IVF index with {retrieval.num_partitions} partitions",
            where="setting 'retrieval.num_partitions' (env DOCS_ASSISTANT_RETRIEVAL__NUM_PARTITIONS)",
            hint="lower it, or set retrieval.ann_index=false to search exhaustively",
        )
    table.create_index(
        metric=retrieval.metric,
        vector_column_name="vector",
        num_partitions=retrieval.num_partitions,
        num_sub_vectors=retrieval.num_sub_vectors,
        replace=True,
    )


def report_index(settings: Settings, result: IndexResult) -> None:
    summary = {"stage": STAGE, "changed": result.changed, **result.__dict__}
    rows = [
        ("documents", result.documents),
        ("documents re-embedded", result.documents_embedded),
        ("documents removed", result.documents_removed),
        ("chunks in index", result.chunks),
        ("chunks embedded", result.chunks_embedded),
        ("index table version", result.table_version),
        ("documents table version", result.source_versions.get(DOCUMENTS)),
    ]
    markdown = "## Index\n\n" + markdown_table(["", "value"], rows) + "\n"
    write_report(settings.paths.reports_dir, STAGE, summary, markdown)
