"""pandera contracts for every table the pipeline reads: documents, chunks, embeddings, QA pairs, feedback.

The models hold what is always true (types, ids, formats, uniqueness); `*_schema(settings, ...)` adds what
is configured (length bounds) or known only at run time (which document ids exist). Columns are `object`
so a wrong type shows up as a failing *row* with its value, not as one dtype error for a whole column.
Every check has a name; `MESSAGES` turns it into the sentence a user reads next to file, line and field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from docs_assistant.config import ValidationSettings

DOC_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")
SOURCE = re.compile(r"^(https?://[^\s]+|(?!/)(?!.*\.\.)[\w./-]+)$")
ANSWER_ID = re.compile(r"^ans-[0-9a-f]{32}$")
QA_SPLITS = ("train", "eval")

MESSAGES: dict[str, str] = {
    "not_nullable": "missing",
    "is_text": "must be a non-empty string",
    "doc_id_format": "invalid id: use lowercase letters, digits and '-' (at most 128)",
    "unique_id": "duplicate id",
    "source_format": "invalid source: a relative path (no '..') or an http(s) URL",
    "no_extra_fields": "unknown field",
    "text_length": "text length out of bounds",
    "title_length": "too long",
    "updated_date": "must be a date (YYYY-MM-DD)",
    "split_known": "unknown split",
    "question_length": "too long",
    "answer_length": "too long",
    "doc_id_list": "must be a non-empty list of document ids",
    "cited_docs_exist": "cites a document that does not exist or was quarantined",
    "question_in_both_splits": "question is in both the train and eval splits",
    "rating_range": "must be an integer -1, 0 or 1",
    "answer_id_format": "must look like 'ans-' + 32 hex digits",
    "timestamp": "must be an ISO 8601 timestamp with a time zone, not in the future",
    "optional_text": "must be a string or null",
    "vector_numbers": "must be a list of numbers",
    "vector_finite": "holds NaN or infinity",
    "vector_dimension": "has the wrong dimension",
    "vector_unit_norm": "is not unit length (the cosine metric needs normalised vectors)",
    "doc_exists": "refers to a document that does not exist or was quarantined",
    "chunk_not_empty": "empty chunk",
}


def is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _column(test: Callable[[Any], bool]) -> Callable[[pd.Series], pd.Series]:
    """An element test as one check of a whole column.

    Same verdicts as pandera's element-wise checks (the nulls are dropped first either way), but one list
    comprehension instead of a `Series.map` through pandera's wrapper per value: 10x faster on 100,000 rows.
    """

    def check(values: pd.Series) -> pd.Series:
        return pd.Series([test(v) for v in values.tolist()], index=values.index, dtype=bool)

    return check


def _length_between(lo: int, hi: int, name: str) -> pa.Check:
    """Non-strings pass here: `is_text` already reports them, once."""
    return pa.Check(_column(lambda v: not isinstance(v, str) or lo <= len(v) <= hi), name=name, error=f"[{lo}, {hi}]")


def _is_date(value: Any) -> bool:
    if isinstance(value, date):
        return True
    try:
        date.fromisoformat(str(value))
    except ValueError:
        return False
    return True


def later_duplicates(values: pd.Series) -> pd.Series:
    """True for the first occurrence, False for every repeat: the first one stays, the rest are quarantined."""
    hashable = values.map(lambda v: v if isinstance(v, str | int | float) else repr(v))
    return ~hashable.duplicated(keep="first")


def _check(name: str, test: Callable[[Any], bool]) -> pa.Check:
    return pa.Check(_column(test), name=name)


def _col(*checks: pa.Check, nullable: bool = False) -> pa.Column:
    """A column of any Python objects (so a wrong type fails its row, not the dtype) with these checks."""
    return pa.Column(object, checks=list(checks), nullable=nullable)


def _text(*checks: pa.Check, nullable: bool = False) -> pa.Column:
    """A column of non-empty strings, then these checks."""
    return _col(_check("is_text", is_text), *checks, nullable=nullable)


def _id(*checks: pa.Check) -> pa.Column:
    """The block every table's key repeats: a non-empty string, its format checks, the first one stays."""
    return _text(*checks, pa.Check(later_duplicates, name="unique_id"))


def _table(columns: dict[str, pa.Column], *checks: pa.Check) -> pa.DataFrameSchema:
    """A contract: the columns in order, then `extra` (fields nobody declared); provenance columns may ride along."""
    extra = _col(_check("no_extra_fields", lambda value: not value))
    return pa.DataFrameSchema({**columns, "extra": extra}, checks=list(checks), strict=False)


def _question_in_both_splits(df: pd.DataFrame) -> pd.Series:
    """A question seen in training must not be scored in eval: the eval copy fails."""
    key = df["question"].map(lambda q: " ".join(q.lower().split()) if isinstance(q, str) else None)
    train = set(key[df["split"] == "train"].dropna())
    return ~((df["split"] == "eval") & key.isin(train))


def _vector_numbers(value: Any) -> bool:
    return (
        isinstance(value, list | np.ndarray)
        and len(value) > 0
        and all(isinstance(x, int | float | np.floating) and not isinstance(x, bool) for x in value)
    )


def document_contract() -> pa.DataFrameSchema:
    """One Markdown page: front matter id/title/source (+ optional updated) and a body."""
    return _table(
        {
            "id": _id(_check("doc_id_format", lambda v: not isinstance(v, str) or bool(DOC_ID.match(v)))),
            "title": _text(),
            "source": _text(_check("source_format", lambda v: not isinstance(v, str) or bool(SOURCE.match(v)))),
            "text": _text(),
            "updated": _col(_check("updated_date", _is_date), nullable=True),
        }
    )


def qa_contract() -> pa.DataFrameSchema:
    """One question/answer pair citing the documents that answer it."""
    doc_id_list = _check(
        "doc_id_list", lambda v: isinstance(v, list) and bool(v) and all(isinstance(d, str) for d in v)
    )
    return _table(
        {
            "id": _id(),
            "split": _col(pa.Check.isin(list(QA_SPLITS))),
            "question": _text(),
            "answer": _text(),
            "doc_ids": _col(doc_id_list),
        },
        pa.Check(_question_in_both_splits, name="question_in_both_splits"),
    )


def feedback_contract() -> pa.DataFrameSchema:
    """A rating of one served answer (exported from the service's `feedback` table or collected elsewhere)."""
    return _table(
        {
            "id": _id(),
            "answer_id": _col(_check("answer_id_format", lambda v: isinstance(v, str) and bool(ANSWER_ID.match(v)))),
            "rating": _col(_check("rating_range", lambda v: type(v) is int and -1 <= v <= 1)),
            "correction": _optional_text(),
            "created_at": _col(_check("timestamp", lambda v: parse_timestamp(v) is not None)),
            "question": _optional_text(),
            "answer": _optional_text(),
        }
    )


def _optional_text() -> pa.Column:
    return _col(_check("optional_text", lambda v: isinstance(v, str)), nullable=True)


def embedding_contract() -> pa.DataFrameSchema:
    """A vector for one document (or chunk): numbers only, finite, one dimension, unit length."""
    finite = _check("vector_finite", lambda v: not _numeric(v) or all(math.isfinite(float(x)) for x in v))
    return _table({"doc_id": _text(), "vector": _col(_check("vector_numbers", _vector_numbers), finite)})


def chunk_contract() -> pa.DataFrameSchema:
    """One chunk of a document, as the index stores it."""
    return _table({"id": _id(), "doc_id": _text(), "text": _col(_check("chunk_not_empty", is_text))})


def _numeric(value: Any) -> bool:
    return isinstance(value, list | np.ndarray) and all(
        isinstance(x, int | float | np.floating) and not isinstance(x, bool) for x in value
    )


def parse_timestamp(value: Any, now: datetime | None = None) -> datetime | None:
    """An aware ISO 8601 timestamp not in the future, else None."""
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if stamp.tzinfo is None:
        return None
    now = now or datetime.now(stamp.tzinfo)
    return stamp if stamp <= now else None


def _with(schema: pa.DataFrameSchema, column: str, *checks: pa.Check) -> pa.DataFrameSchema:
    return schema.update_column(column, checks=[*schema.columns[column].checks, *checks])


def _member(known: Collection[str], name: str, every: bool = False) -> pa.Check:
    test: Callable[[Any], bool]
    if every:
        test = lambda v: not isinstance(v, list) or all(d in known for d in v)  # noqa: E731
    else:
        test = lambda v: not isinstance(v, str) or v in known  # noqa: E731
    return pa.Check(_column(test), name=name)


def document_schema(vs: ValidationSettings) -> pa.DataFrameSchema:
    schema = document_contract()
    schema = _with(schema, "text", _length_between(vs.min_document_chars, vs.max_document_chars, "text_length"))
    return _with(schema, "title", _length_between(1, vs.max_title_chars, "title_length"))


def qa_schema(vs: ValidationSettings, doc_ids: Collection[str]) -> pa.DataFrameSchema:
    schema = qa_contract()
    schema = _with(schema, "question", _length_between(1, vs.max_question_chars, "question_length"))
    schema = _with(schema, "answer", _length_between(1, vs.max_answer_chars, "answer_length"))
    return _with(schema, "doc_ids", _member(doc_ids, "cited_docs_exist", every=True))


def feedback_schema() -> pa.DataFrameSchema:
    return feedback_contract()


def embedding_schema(
    vs: ValidationSettings, doc_ids: Collection[str], dimension: int | None, *, unit_norm: bool = True
) -> pa.DataFrameSchema:
    """`dimension` None: the most common length among the rows is taken as the intended one."""
    schema = _with(embedding_contract(), "doc_id", _member(doc_ids, "doc_exists"))
    tol = vs.embedding_norm_tolerance

    def right_dimension(vectors: pd.Series) -> pd.Series:
        lengths = vectors.map(lambda v: len(v) if _numeric(v) else -1)
        valid = lengths[lengths > 0]
        want = dimension if dimension is not None else (int(valid.mode().iloc[0]) if len(valid) else 0)
        return (lengths == -1) | (lengths == want)

    def is_unit(value: Any) -> bool:
        if not _numeric(value) or not all(math.isfinite(float(x)) for x in value):
            return True
        return abs(float(np.linalg.norm(np.asarray(value, dtype=np.float64))) - 1.0) <= tol

    checks = [pa.Check(right_dimension, name="vector_dimension")]
    if unit_norm:
        checks.append(pa.Check(_column(is_unit), name="vector_unit_norm"))
    return _with(schema, "vector", *checks)


def chunk_schema(doc_ids: Collection[str]) -> pa.DataFrameSchema:
    return _with(chunk_contract(), "doc_id", _member(doc_ids, "doc_exists"))


def schema_failures(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    """pandera's failure cases (column, check, failure_case, index), empty when every row passes."""
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return exc.failure_cases
    return pd.DataFrame(columns=["schema_context", "column", "check", "check_number", "failure_case", "index"])
