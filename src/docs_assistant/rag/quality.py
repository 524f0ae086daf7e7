"""Retrieval quality on the QA pairs: hit@k and MRR at document level.

A question hits when any document it cites is among the documents of its top-k chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docs_assistant.data.store import QA, FeatureStore
from docs_assistant.rag.retriever import Retriever


@dataclass(frozen=True)
class RetrievalQuality:
    split: str
    k: int
    questions: int
    hit_at_k: float
    mrr: float
    misses: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__ | {}


def evaluate_retrieval(retriever: Retriever, store: FeatureStore, split: str = "eval", k: int = 5) -> RetrievalQuality:
    rows = [r for r in store.read(QA).to_pylist() if r["split"] == split]
    vectors = retriever.embedder.get_text_embedding_batch([r["question"] for r in rows])
    hits, reciprocal, misses = 0, 0.0, []
    for row, vector in zip(rows, vectors, strict=True):
        ranked: list[str] = []
        for chunk in retriever.search(vector, top_k=k * 4):  # several chunks per document
            if chunk.doc_id not in ranked:
                ranked.append(chunk.doc_id)
        ranked = ranked[:k]
        ranks = [ranked.index(d) + 1 for d in row["doc_ids"] if d in ranked]
        if ranks:
            hits += 1
            reciprocal += 1.0 / min(ranks)
        else:
            misses.append({"id": row["id"], "question": row["question"], "expected": row["doc_ids"], "got": ranked})
    n = len(rows) or 1
    return RetrievalQuality(split, k, len(rows), hits / n, reciprocal / n, misses)
