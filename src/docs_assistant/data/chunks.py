"""Chunks and their embeddings are validated before the index writes them: the contracts of `schemas`
(non-empty chunk, its document exists, vector dimension, no NaN/inf, unit length for the `dot` metric)
and the chunk-length shares of the `validation` settings. A failure quarantines the rows and raises, so
the vector table keeps its previous version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from docs_assistant.config import Settings
from docs_assistant.data import quality, schemas
from docs_assistant.errors import DataError, InvalidDataError


def validate_chunks(
    settings: Settings,
    chunks: Sequence[dict[str, Any]],
    vectors: Sequence[Sequence[float]],
    *,
    dimension: int,
    doc_paths: dict[str, str],
    token_counts: Sequence[int],
    index_chunks: int | None = None,
) -> None:
    """`chunks`: dicts with id, doc_id, text. Raises InvalidDataError (after quarantining) on any failure.

    `index_chunks`: how many chunks the index will hold after this write; length shares are taken over it,
    since an incremental build re-embeds a few documents and one short chunk must not be 100 %.
    """
    vs = settings.validation
    positions = list(range(len(chunks)))
    frame = pd.DataFrame(
        [[c["id"], c["doc_id"], c["text"], []] for c in chunks],
        columns=["id", "doc_id", "text", "extra"],
        dtype=object,
    )
    errors: list[tuple[str, str, str, str, str]] = []  # (kind, file, field, check, message)

    def where(pos: int) -> str:
        return doc_paths.get(str(chunks[pos]["doc_id"]), str(chunks[pos]["doc_id"]))

    for case in schemas.schema_failures(schemas.chunk_schema(doc_paths), frame).itertuples(index=False):
        pos = int(case.index)
        errors.append(("chunks", where(pos), str(case.column), str(case.check), f"chunk {chunks[pos]['id']!r}"))
    vframe = pd.DataFrame(
        [[c["doc_id"], list(v), []] for c, v in zip(chunks, vectors, strict=True)],
        columns=["doc_id", "vector", "extra"],
        dtype=object,
    )
    unit = settings.retrieval.metric == "dot"  # a dot product ranks like cosine only on unit vectors
    emb_schema = schemas.embedding_schema(vs, doc_paths, dimension, unit_norm=unit)
    for case in schemas.schema_failures(emb_schema, vframe).itertuples(index=False):
        pos = int(case.index)
        errors.append(("embeddings", where(pos), "vector", str(case.check), f"chunk {chunks[pos]['id']!r}"))
    short, long = quality.chunk_lengths(token_counts, vs)
    for name, flags, limit in (
        ("short_chunks", short, vs.max_short_chunk_share),
        ("long_chunks", long, vs.max_long_chunk_share),
    ):
        total = max(index_chunks or 0, len(positions))
        if total and len(flags) / total > limit:
            share = len(flags) / total
            for pos, reason in sorted(flags.items()):
                message = f"chunk {chunks[pos]['id']!r}: {reason}; {share:.1%} of chunks, limit {limit:.1%}"
                errors.append(("chunks", where(pos), "text", name, message))
    if not errors:
        return
    failures = [
        DataError(f"{schemas.MESSAGES.get(check, check)}: {message} [{check}]", file=file, field=field)
        for _, file, field, check, message in errors
    ]
    _quarantine(settings, errors)
    raise InvalidDataError(failures)


def _quarantine(settings: Settings, errors: list[tuple[str, str, str, str, str]]) -> None:
    import uuid
    from datetime import UTC, datetime

    import pyarrow as pa

    from docs_assistant.data.store import QUARANTINE, SCHEMAS, FeatureStore

    run_id, at = uuid.uuid4().hex[:12], datetime.now(UTC)
    rows = [
        {
            "run_id": run_id,
            "at": at,
            "kind": kind,
            "file": file,
            "line": None,
            "field": field,
            "check": check,
            "message": message,
            "raw": message,
        }
        for kind, file, field, check, message in errors
    ]
    store = FeatureStore(settings.paths.store_uri)
    data = pa.Table.from_pylist(rows, schema=SCHEMAS[QUARANTINE])
    if store.has_table(QUARANTINE):
        store.open(QUARANTINE).add(data)
    else:
        store.db.create_table(QUARANTINE, data=data, schema=SCHEMAS[QUARANTINE])
