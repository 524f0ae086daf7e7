"""Bad input in data/: one clear error naming the file, line and field; nothing half-read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docs_assistant.data.corpus import load_documents, load_qa, parse_document
from docs_assistant.errors import DataError, InvalidDataError

GOOD = "---\nid: {id}\ntitle: A title\nsource: docs/a.md\n---\n# Heading\n\nSome text.\n"


def write_doc(directory: Path, name: str, text: str | bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.md"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_parses_front_matter_and_body(tmp_path: Path) -> None:
    doc = parse_document(write_doc(tmp_path, "alpha", GOOD.format(id="alpha")))
    assert (doc.id, doc.title, doc.source) == ("alpha", "A title", "docs/a.md")
    assert doc.text.startswith("# Heading")
    assert len(doc.content_hash) == 64


def test_malformed_front_matter_names_file_and_line(tmp_path: Path) -> None:
    path = write_doc(tmp_path, "bad", "---\nid: bad\ntitle: [unclosed\nsource: docs/a.md\n---\nbody\n")
    with pytest.raises(DataError) as err:
        parse_document(path)
    assert err.value.file == str(path)
    assert err.value.line is not None
    assert err.value.line >= 2
    assert "malformed front matter" in str(err.value)


def test_missing_front_matter(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing front matter"):
        parse_document(write_doc(tmp_path, "plain", "# Just markdown\n"))


def test_document_without_id_names_the_field(tmp_path: Path) -> None:
    path = write_doc(tmp_path, "noid", "---\ntitle: T\nsource: docs/t.md\n---\nbody\n")
    with pytest.raises(DataError) as err:
        parse_document(path)
    assert err.value.field == "id"
    assert f"{path}:2" in str(err.value)


def test_invalid_id_is_rejected(tmp_path: Path) -> None:
    path = write_doc(tmp_path, "x", GOOD.format(id="Has Spaces"))
    with pytest.raises(DataError, match="invalid id"):
        parse_document(path)


def test_empty_body_is_rejected(tmp_path: Path) -> None:
    path = write_doc(tmp_path, "empty", "---\nid: empty\ntitle: T\nsource: docs/t.md\n---\n\n")
    with pytest.raises(DataError, match="body is empty"):
        parse_document(path)


def test_non_utf8_bytes_name_file_and_line(tmp_path: Path) -> None:
    raw = GOOD.format(id="latin").encode() + b"caf\xe9 au lait\n"
    path = write_doc(tmp_path, "latin", raw)
    with pytest.raises(DataError) as err:
        parse_document(path)
    assert "not valid UTF-8" in str(err.value)
    assert err.value.line == 9


def test_duplicate_ids_name_both_files(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_doc(docs, "one", GOOD.format(id="same"))
    write_doc(docs, "two", GOOD.format(id="same"))
    with pytest.raises(InvalidDataError) as err:
        load_documents(docs)
    text = str(err.value)
    assert "duplicate id 'same'" in text
    assert "one.md" in text
    assert "two.md" in text


def test_all_bad_files_are_reported_at_once(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_doc(docs, "a", "no front matter")
    write_doc(docs, "b", b"\xff\xfe")
    write_doc(docs, "c", GOOD.format(id="c"))
    with pytest.raises(InvalidDataError) as err:
        load_documents(docs)
    assert len(err.value.errors) == 2


def qa_dir(tmp_path: Path, train: list[object], eval_: list[object]) -> Path:
    directory = tmp_path / "qa"
    directory.mkdir()
    for name, rows in (("train", train), ("eval", eval_)):
        lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
        (directory / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def qa(i: int, question: str = "What is it?", doc_ids: list[str] | None = None) -> dict[str, object]:
    return {"id": f"q{i}", "question": question, "answer": "It is a thing.", "doc_ids": doc_ids or ["alpha"]}


def test_qa_pairs_load_with_their_split(tmp_path: Path) -> None:
    pairs = load_qa(qa_dir(tmp_path, [qa(1)], [qa(2, "How so?")]), {"alpha"})
    assert [(p.id, p.split) for p in pairs] == [("q1", "train"), ("q2", "eval")]


def test_empty_question_names_file_line_and_field(tmp_path: Path) -> None:
    directory = qa_dir(tmp_path, [qa(1), qa(2, "   ")], [])
    with pytest.raises(InvalidDataError) as err:
        load_qa(directory, {"alpha"})
    assert err.value.field == "question"
    assert err.value.line == 2
    assert "train.jsonl:2" in str(err.value)


def test_one_megabyte_question_is_rejected(tmp_path: Path) -> None:
    directory = qa_dir(tmp_path, [], [qa(1, "why " * 262_144)])
    with pytest.raises(InvalidDataError, match="too long"):
        load_qa(directory, {"alpha"})


def test_unknown_cited_document(tmp_path: Path) -> None:
    with pytest.raises(InvalidDataError, match="unknown documents"):
        load_qa(qa_dir(tmp_path, [qa(1, doc_ids=["nope"])], []), {"alpha"})


def test_question_in_both_splits_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidDataError, match="both splits"):
        load_qa(qa_dir(tmp_path, [qa(1, "Same?")], [qa(2, "same?")]), {"alpha"})


def test_invalid_json_line(tmp_path: Path) -> None:
    with pytest.raises(InvalidDataError) as err:
        load_qa(qa_dir(tmp_path, ["{not json"], []), {"alpha"})
    assert err.value.line == 1
    assert "invalid JSON" in str(err.value)


def test_duplicate_qa_ids(tmp_path: Path) -> None:
    with pytest.raises(InvalidDataError, match="duplicate id"):
        load_qa(qa_dir(tmp_path, [qa(1, "A?")], [qa(1, "B?")]), {"alpha"})


def test_missing_split_file(tmp_path: Path) -> None:
    directory = tmp_path / "qa"
    directory.mkdir()
    (directory / "train.jsonl").write_text(json.dumps(qa(1)) + "\n", encoding="utf-8")
    with pytest.raises(InvalidDataError, match=r"eval\.jsonl"):
        load_qa(directory, {"alpha"})
