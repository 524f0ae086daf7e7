"""The vector index: incremental by content hash, atomic, readable by llama-index, good enough to gate on."""

from __future__ import annotations

from pathlib import Path

import pytest

from docs_assistant.data.ingest import ingest
from docs_assistant.data.store import FeatureStore
from docs_assistant.rag.index import CHUNKS, build_index
from docs_assistant.rag.quality import evaluate_retrieval
from docs_assistant.rag.retriever import Retriever

pytestmark = pytest.mark.integration


def first_doc(project) -> Path:
    return sorted((project.data / "docs").glob("*.md"))[0]


def test_first_build_embeds_every_document(project, embedder) -> None:
    settings = project.settings()
    ingest(settings)
    result = build_index(settings, embedder=embedder)
    assert result.documents_embedded == result.documents > 0
    assert result.chunks == result.chunks_embedded >= result.documents
    assert result.source_versions["documents"] >= 1


def test_rerun_with_no_change_reembeds_nothing(indexed_project, embedder) -> None:
    settings = indexed_project.settings()
    store = FeatureStore(settings.paths.store_uri)
    version = store.open(CHUNKS).version
    ingest(settings)
    result = build_index(settings, embedder=embedder)
    assert (result.documents_embedded, result.chunks_embedded, result.documents_removed) == (0, 0, 0)
    assert result.changed is False
    assert store.open(CHUNKS).version == version


def test_only_the_changed_document_is_reembedded(indexed_project, embedder) -> None:
    settings = indexed_project.settings()
    path = first_doc(indexed_project)
    path.write_text(path.read_text() + "\n## Extra\n\nA brand-new paragraph about quokka telemetry.\n")
    ingest(settings)
    result = build_index(settings, embedder=embedder)
    assert result.documents_embedded == 1
    chunks, _ = Retriever(settings, embedder=embedder).retrieve("quokka telemetry")
    assert chunks[0].doc_id == path.stem
    assert "quokka" in chunks[0].text


def test_a_shrunk_document_leaves_no_stale_chunks(indexed_project, embedder) -> None:
    settings = indexed_project.settings()
    path = first_doc(indexed_project)
    head = path.read_text().split("\n---\n", 1)[0]
    path.write_text(head + "\n---\nNow one short line.\n")
    ingest(settings)
    build_index(settings, embedder=embedder)
    rows = FeatureStore(settings.paths.store_uri).read(CHUNKS).to_pylist()
    mine = [r for r in rows if r["doc_id"] == path.stem]
    assert len(mine) == 1
    assert mine[0]["text"].strip() == "Now one short line."


def test_settings_change_reembeds_everything(indexed_project, embedder) -> None:
    settings = indexed_project.settings(chunking={"size": 120, "overlap": 20})
    result = build_index(settings, embedder=embedder)
    assert result.documents_embedded == result.documents


def test_table_opens_as_a_llama_index_vector_store(indexed_project, embedder) -> None:
    from llama_index.core.vector_stores.types import VectorStoreQuery
    from llama_index.vector_stores.lancedb import LanceDBVectorStore

    settings = indexed_project.settings()
    retriever = Retriever(settings, embedder=embedder)
    vector = retriever.embed("How do I install the product?")
    ours = [c.id for c in retriever.search(vector)]
    store = LanceDBVectorStore(uri=str(settings.paths.store_uri), table_name=CHUNKS, mode="append")
    theirs = store.query(VectorStoreQuery(query_embedding=vector, similarity_top_k=5))
    assert theirs.ids == ours
    assert theirs.nodes[0].metadata["doc_id"] == ours[0].split("#")[0]


def test_ann_index_with_explicit_nprobes_and_refine(full_project, embedder, tmp_path) -> None:
    import shutil

    settings = full_project.settings(
        paths={"state_dir": tmp_path / "var"},
        retrieval={"ann_index": True, "num_partitions": 4, "num_sub_vectors": 8, "nprobes": 4, "refine_factor": 5},
    )
    shutil.copytree(full_project.settings().paths.store_uri, settings.paths.store_uri)
    result = build_index(settings, embedder=embedder)  # no document changed, but the index is missing
    assert result.ann_index
    assert result.documents_embedded == 0
    assert FeatureStore(settings.paths.store_uri).open(CHUNKS).list_indices()
    quality = evaluate_retrieval(Retriever(settings, embedder=embedder), FeatureStore(settings.paths.store_uri))
    assert quality.hit_at_k >= 0.8


def test_retrieval_hit_at_5_on_eval_questions(full_project, embedder) -> None:
    """Acceptance: hit@5 >= 0.8 with the default embedder on the held-out questions."""
    settings = full_project.settings()
    store = FeatureStore(settings.paths.store_uri)
    quality = evaluate_retrieval(Retriever(settings, embedder=embedder, store=store), store, "eval", 5)
    assert quality.questions >= 30
    assert quality.hit_at_k >= 0.8, quality.misses
    assert 0 < quality.mrr <= quality.hit_at_k
