"""Retrieval quality on the QA pairs: hit@k and MRR at document level.

A question hits when any document it cites is among the documents of its top-k chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docs_assistant.config import Settings
from docs_assistant.data.store import QA, FeatureStore
from docs_assistant.rag.retriever import Retriever
from docs_assistant.reports import markdown_table, write_report

STAGE = "retrieval"


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


@dataclass(frozen=True)
class RetrievalGate:
    """The retrieval-eval stage's verdict: the measured quality against the hit@k floor."""

    quality: RetrievalQuality
    min_hit: float

    @property
    def passed(self) -> bool:
        return self.quality.hit_at_k >= self.min_hit

    def summary(self) -> dict[str, Any]:
        return self.quality.as_dict() | {"stage": STAGE, "min_hit": self.min_hit, "passed": self.passed}


def run_retrieval_eval(settings: Settings, split: str = "eval", k: int = 5, min_hit: float = 0.8) -> RetrievalGate:
    """Score retrieval on the QA split, gate on hit@k, and write `reports/retrieval/` (summary and table)."""
    store = FeatureStore(settings.paths.store_uri)
    gate = RetrievalGate(evaluate_retrieval(Retriever(settings, store=store), store, split, k), min_hit)
    quality = gate.quality
    table = markdown_table(
        ["split", "questions", f"hit@{k}", "MRR", "gate"],
        [(split, quality.questions, f"{quality.hit_at_k:.3f}", f"{quality.mrr:.3f}", f">= {min_hit}")],
    )
    write_report(settings.paths.reports_dir, STAGE, gate.summary(), f"## Retrieval quality\n\n{table}\n")
    return gate
