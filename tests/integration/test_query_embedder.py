"""Serving embeds queries without llama-index, and the vectors are the ones llama-index would give."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from docs_assistant.config import EmbeddingSettings
from docs_assistant.rag.embeddings import QueryEmbedder, load_query_embedder

from ..conftest import REPO  # noqa: TID252 - the repository root

pytestmark = pytest.mark.integration


def test_query_vectors_equal_llama_index_ones(embedder) -> None:
    query = load_query_embedder(EmbeddingSettings())
    assert isinstance(query, QueryEmbedder)
    questions = [
        json.loads(line)["question"]
        for line in (REPO / "data" / "qa" / "eval.jsonl").read_text(encoding="utf-8").splitlines()[:10]
    ]
    texts = [*questions, "", "ünïcödé ✓ 日本語"]
    for question in texts:
        ours, theirs = query.get_query_embedding(question), embedder.get_query_embedding(question)
        assert np.allclose(ours, theirs, atol=1e-6), question
    # retrieval-eval and the evals embed questions in batches
    assert np.allclose(query.get_text_embedding_batch(texts), embedder.get_text_embedding_batch(texts), atol=1e-6)


def test_answering_a_question_never_imports_llama_index(indexed_project) -> None:
    script = (
        "import sys\n"
        "from docs_assistant.config import load_settings\n"
        "from docs_assistant.rag.pipeline import RagPipeline\n"
        "assert RagPipeline(load_settings()).answer('How do I install it?').text is not None\n"
        "print(sorted({m.split('.')[0] + '.' + m.split('.')[1] for m in sys.modules if m.startswith('llama_index.')}))\n"
    )
    env = os.environ | indexed_project.env()
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
