"""The validate stage ingests exactly the rows the plain ingest would write for the same pages."""

from __future__ import annotations

from docs_assistant.data.corpus import Document
from docs_assistant.data.readers import Record
from docs_assistant.data.validate import document_row


def test_a_document_row_is_what_document_row_gives() -> None:
    values = {"id": "relay", "title": "Relay é", "source": "docs/relay.md", "text": "Body\n", "updated": None}
    record = Record("documents", "data/docs/relay.md", 2, "raw", values | {"extra": []})
    expected = Document(values["id"], values["title"], values["source"], values["text"], record.file).row()
    assert document_row(record) == expected
    assert list(document_row(record)) == list(expected)
