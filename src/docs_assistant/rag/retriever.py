"""Retrieval over the chunks table, with the top-k / metric / nprobes / refine_factor from settings.

Queries go straight to LanceDB (the table llama-index's vector store writes), returning light records:
retrieval sits on every request's path, so it stays within a small factor of a raw `table.search`
(measured in `benchmarks/`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from docs_assistant.config import RetrievalSettings, Settings
from docs_assistant.data.store import FeatureStore
from docs_assistant.rag.index import CHUNKS

COLUMNS = ["id", "doc_id", "text", "metadata", "_distance"]


@dataclass(frozen=True)
class Chunk:
    id: str
    doc_id: str
    title: str
    source: str
    text: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "chunk_id": self.id,
            "doc_id": self.doc_id,
            "title": self.title,
            "source": self.source,
            "score": self.score,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        """`as_dict` read back, plus the text (the eval cache stores retrieved chunks with it)."""
        return cls(data["chunk_id"], data["doc_id"], data["title"], data["source"], data["text"], data["score"])


def _score(distance: float, metric: str) -> float:
    """Higher is better for every metric: cosine similarity, else the negated LanceDB distance."""
    return 1.0 - distance if metric == "cosine" else -distance


class Retriever:
    def __init__(self, settings: Settings, embedder: Any = None, store: FeatureStore | None = None):
        self.settings: RetrievalSettings = settings.retrieval
        self.store = store or FeatureStore(settings.paths.store_uri)
        self.table = self.store.open(CHUNKS)
        self._embedding_settings = settings.embedding
        self._embedder = embedder

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from docs_assistant.rag.embeddings import load_query_embedder

            self._embedder = load_query_embedder(self._embedding_settings)
        return self._embedder

    @property
    def version(self) -> int:
        return self.table.version

    def embed(self, question: str) -> list[float]:
        return self.embedder.get_query_embedding(question)

    def query(self, vector: list[float], top_k: int | None = None) -> Any:
        """The LanceDB query these settings describe, not yet executed."""
        s = self.settings
        query = (
            self.table.search(vector, vector_column_name="vector")
            .distance_type(s.metric)
            .limit(top_k or s.top_k)
            .select(COLUMNS)
        )
        if s.ann_index:
            query = query.nprobes(s.nprobes)
            if s.refine_factor:
                query = query.refine_factor(s.refine_factor)
        return query

    def search(self, vector: list[float], top_k: int | None = None) -> list[Chunk]:
        rows = self.query(vector, top_k).to_arrow().to_pylist()
        return [
            Chunk(
                id=r["id"],
                doc_id=r["doc_id"],
                title=r["metadata"].get("title", ""),
                source=r["metadata"].get("source", ""),
                text=r["text"],
                score=_score(r["_distance"], self.settings.metric),
            )
            for r in rows
        ]

    def retrieve(self, question: str, top_k: int | None = None) -> tuple[list[Chunk], dict[str, float]]:
        t0 = time.perf_counter()
        vector = self.embed(question)
        t1 = time.perf_counter()
        chunks = self.search(vector, top_k)
        t2 = time.perf_counter()
        return chunks, {"embed_ms": (t1 - t0) * 1000, "search_ms": (t2 - t1) * 1000}
