"""The index validates chunks and vectors before writing them: each gate fails the build, names the
document file and field, quarantines the rows, and leaves the vector table at its version."""

from __future__ import annotations

import math

import pytest

from docs_assistant.data.chunks import validate_chunks
from docs_assistant.data.store import QUARANTINE, FeatureStore
from docs_assistant.data.validate import run_validation
from docs_assistant.errors import InvalidDataError
from docs_assistant.rag.index import CHUNKS, build_index

pytestmark = pytest.mark.integration


@pytest.fixture
def indexed(project, embedder):
    assert run_validation(project.settings()).passed
    build_index(project.settings(), embedder=embedder)
    return project


def versions(project) -> dict[str, int]:
    return FeatureStore(project.settings().paths.store_uri).versions()


@pytest.mark.parametrize(
    ("thresholds", "check"),
    [
        ({"min_chunk_tokens": 120, "max_short_chunk_share": 0.0}, "short_chunks"),
        ({"max_chunk_tokens": 40, "max_long_chunk_share": 0.0}, "long_chunks"),
    ],
)
def test_chunk_length_gate_fails_the_index_and_keeps_its_version(indexed, embedder, thresholds, check) -> None:
    project = indexed
    doc = sorted((project.data / "docs").glob("*.md"))[0]
    doc.write_text(
        doc.read_text(encoding="utf-8") + "\nA changed closing sentence for re-embedding.\n", encoding="utf-8"
    )
    assert run_validation(project.settings()).passed
    before = versions(project)

    with pytest.raises(InvalidDataError) as caught:
        build_index(project.settings(validation=thresholds), embedder=embedder)

    assert f"data/docs/{doc.name}: field 'text'" in str(caught.value)
    assert f"[{check}]" in str(caught.value)
    after = versions(project)
    assert after[CHUNKS] == before[CHUNKS]
    rows = FeatureStore(project.settings().paths.store_uri).read(QUARANTINE).to_pylist()
    assert {r["check"] for r in rows} == {check}
    assert {r["file"] for r in rows} == {f"data/docs/{doc.name}"}


def test_nan_wrong_dimension_and_empty_chunk_are_refused(project) -> None:
    settings = project.settings(retrieval={"metric": "dot"})
    chunks = [
        {"id": "a#0", "doc_id": "a", "text": "fine text here"},
        {"id": "a#1", "doc_id": "a", "text": "   "},
        {"id": "b#0", "doc_id": "gone", "text": "orphan chunk"},
    ]
    vectors = [[math.nan, 0.0, 0.0], [1.0, 0.0], [0.5, 0.5, 0.5]]
    with pytest.raises(InvalidDataError) as caught:
        validate_chunks(
            settings, chunks, vectors, dimension=3, doc_paths={"a": "data/docs/a.md"}, token_counts=[20, 20, 20]
        )
    found = {(e.file, e.field, e.message.rsplit("[", 1)[1].rstrip("]")) for e in caught.value.errors}
    assert found >= {
        ("data/docs/a.md", "vector", "vector_finite"),
        ("data/docs/a.md", "vector", "vector_dimension"),
        ("data/docs/a.md", "text", "chunk_not_empty"),
        ("gone", "doc_id", "doc_exists"),
        ("gone", "vector", "vector_unit_norm"),
    }
