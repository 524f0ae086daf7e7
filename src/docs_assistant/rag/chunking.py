"""Chunk documents with llama-index's SentenceSplitter, measured in the embedder's own tokens.

Sentences are split with a regular expression instead of NLTK's punkt: NLTK refuses to read its data
through the hard links that uv installs, and a regex needs no data files at all.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from docs_assistant.config import ChunkSettings
from docs_assistant.data.corpus import Document

if TYPE_CHECKING:
    from llama_index.core.schema import TextNode

SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n{2,}")
#: kept on every chunk; only the title is embedded with the text
METADATA_KEYS = ("doc_id", "title", "source", "doc_hash")


def split_sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_BREAK.split(text) if s.strip()]


def chunk_documents(docs: list[tuple[Document, str]], settings: ChunkSettings, tokenizer: Any) -> list[TextNode]:
    """Nodes with deterministic ids `<doc_id>#<n>`, so re-chunking an unchanged document is a no-op."""
    from llama_index.core import Document as LlamaDocument
    from llama_index.core.node_parser import SentenceSplitter

    splitter = SentenceSplitter(
        chunk_size=settings.size,
        chunk_overlap=settings.overlap,
        tokenizer=tokenizer.tokenize,
        chunking_tokenizer_fn=split_sentences,
        id_func=lambda i, doc: f"{doc.id_}#{i}",
        include_prev_next_rel=False,
    )
    llama_docs = [
        LlamaDocument(
            id_=doc.id,
            text=doc.text,
            metadata={"doc_id": doc.id, "title": doc.title, "source": doc.source, "doc_hash": doc_hash},
            excluded_embed_metadata_keys=["doc_id", "source", "doc_hash"],
            excluded_llm_metadata_keys=["doc_id", "doc_hash"],
        )
        for doc, doc_hash in docs
    ]
    return splitter.get_nodes_from_documents(llama_docs)
