"""pandera contracts for every table the pipeline reads: documents, chunks, embeddings, QA pairs, feedback.

The models hold what is always true (types, ids, formats, uniqueness); `*_schema(settings, ...)` adds what
is configured (length bounds) or known only at run time (which document ids exist). Columns are `object`
so a wrong type shows up as a failing *row* with its value, not as one dtype error for a whole column.
Every check has a name; `MESSAGES` turns it into the sentence a user reads next to file, line and field.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Collection
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

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


def _each(test: Callable[[Any, Any], bool]) -> Callable[[Any, pd.Series], pd.Series]:
    """`_column` for a model's check method, `test(cls, value)`."""

    @functools.wraps(test)
    def check(cls: Any, values: pd.Series) -> pd.Series:
        return pd.Series([test(cls, v) for v in values.tolist()], index=values.index, dtype=bool)

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


class _Base(pa.DataFrameModel):
    class Config:
        strict = False  # provenance columns (file, line) travel with the rows

    @pa.check("extra", name="no_extra_fields")
    @_each
    def no_extra_fields(cls, value: Any) -> bool:
        return not value


class DocumentModel(_Base):
    """One Markdown page: front matter id/title/source (+ optional updated) and a body."""

    id: Series[object] = pa.Field(nullable=False)
    title: Series[object] = pa.Field(nullable=False)
    source: Series[object] = pa.Field(nullable=False)
    text: Series[object] = pa.Field(nullable=False)
    updated: Series[object] = pa.Field(nullable=True)
    extra: Series[object] = pa.Field(nullable=False)

    @pa.check("id", "title", "source", "text", name="is_text")
    @_each
    def is_text(cls, value: Any) -> bool:
        return is_text(value)

    @pa.check("id", name="doc_id_format")
    @_each
    def doc_id_format(cls, value: Any) -> bool:
        return not isinstance(value, str) or bool(DOC_ID.match(value))

    @pa.check("id", name="unique_id")
    def unique_id(cls, ids: pd.Series) -> pd.Series:
        return later_duplicates(ids)

    @pa.check("source", name="source_format")
    @_each
    def source_format(cls, value: Any) -> bool:
        return not isinstance(value, str) or bool(SOURCE.match(value))

    @pa.check("updated", name="updated_date")
    @_each
    def updated_date(cls, value: Any) -> bool:
        return _is_date(value)


class QAModel(_Base):
    """One question/answer pair citing the documents that answer it."""

    id: Series[object] = pa.Field(nullable=False)
    split: Series[object] = pa.Field(nullable=False, isin=list(QA_SPLITS))
    question: Series[object] = pa.Field(nullable=False)
    answer: Series[object] = pa.Field(nullable=False)
    doc_ids: Series[object] = pa.Field(nullable=False)
    extra: Series[object] = pa.Field(nullable=False)

    @pa.check("id", "question", "answer", name="is_text")
    @_each
    def is_text(cls, value: Any) -> bool:
        return is_text(value)

    @pa.check("id", name="unique_id")
    def unique_id(cls, ids: pd.Series) -> pd.Series:
        return later_duplicates(ids)

    @pa.check("doc_ids", name="doc_id_list")
    @_each
    def doc_id_list(cls, value: Any) -> bool:
        return isinstance(value, list) and bool(value) and all(isinstance(d, str) for d in value)

    @pa.dataframe_check(name="question_in_both_splits")
    def question_in_both_splits(cls, df: pd.DataFrame) -> pd.Series:
        """A question seen in training must not be scored in eval: the eval copy fails."""
        key = df["question"].map(lambda q: " ".join(q.lower().split()) if isinstance(q, str) else None)
        train = set(key[df["split"] == "train"].dropna())
        return ~((df["split"] == "eval") & key.isin(train))


class FeedbackModel(_Base):
    """A rating of one served answer (exported from the service's `feedback` table or collected elsewhere)."""

    id: Series[object] = pa.Field(nullable=False)
    answer_id: Series[object] = pa.Field(nullable=False)
    rating: Series[object] = pa.Field(nullable=False)
    correction: Series[object] = pa.Field(nullable=True)
    created_at: Series[object] = pa.Field(nullable=False)
    extra: Series[object] = pa.Field(nullable=False)

    @pa.check("id", name="is_text")
    @_each
    def is_text(cls, value: Any) -> bool:
        return is_text(value)

    @pa.check("id", name="unique_id")
    def unique_id(cls, ids: pd.Series) -> pd.Series:
        return later_duplicates(ids)

    @pa.check("answer_id", name="answer_id_format")
    @_each
    def answer_id_format(cls, value: Any) -> bool:
        return isinstance(value, str) and bool(ANSWER_ID.match(value))

    @pa.check("rating", name="rating_range")
    @_each
    def rating_range(cls, value: Any) -> bool:
        return type(value) is int and -1 <= value <= 1

    @pa.check("correction", name="optional_text")
    @_each
    def optional_text(cls, value: Any) -> bool:
        return isinstance(value, str)

    @pa.check("created_at", name="timestamp")
    @_each
    def timestamp(cls, value: Any) -> bool:
        return parse_timestamp(value) is not None


class EmbeddingModel(_Base):
    """A vector for one document (or chunk): numbers only, finite, one dimension, unit length."""

    doc_id: Series[object] = pa.Field(nullable=False)
    vector: Series[object] = pa.Field(nullable=False)
    extra: Series[object] = pa.Field(nullable=False)

    @pa.check("doc_id", name="is_text")
    @_each
    def is_text(cls, value: Any) -> bool:
        return is_text(value)

    @pa.check("vector", name="vector_numbers")
    @_each
    def vector_numbers(cls, value: Any) -> bool:
        return (
            isinstance(value, list | np.ndarray)
            and len(value) > 0
            and all(isinstance(x, int | float | np.floating) and not isinstance(x, bool) for x in value)
        )

    @pa.check("vector", name="vector_finite")
    @_each
    def vector_finite(cls, value: Any) -> bool:
        return not _numeric(value) or all(math.isfinite(float(x)) for x in value)


class ChunkModel(_Base):
    """One chunk of a document, as the index stores it."""

    id: Series[object] = pa.Field(nullable=False)
    doc_id: Series[object] = pa.Field(nullable=False)
    text: Series[object] = pa.Field(nullable=False)
    extra: Series[object] = pa.Field(nullable=False)

    @pa.check("id", "doc_id", name="is_text")
    @_each
    def is_text(cls, value: Any) -> bool:
        return is_text(value)

    @pa.check("text", name="chunk_not_empty")
    @_each
    def chunk_not_empty(cls, value: Any) -> bool:
        return is_text(value)

    @pa.check("id", name="unique_id")
    def unique_id(cls, ids: pd.Series) -> pd.Series:
        return later_duplicates(ids)


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
    schema = DocumentModel.to_schema()
    schema = _with(schema, "text", _length_between(vs.min_document_chars, vs.max_document_chars, "text_length"))
    return _with(schema, "title", _length_between(1, vs.max_title_chars, "title_length"))


def qa_schema(vs: ValidationSettings, doc_ids: Collection[str]) -> pa.DataFrameSchema:
    schema = QAModel.to_schema()
    schema = _with(schema, "question", _length_between(1, vs.max_question_chars, "question_length"))
    schema = _with(schema, "answer", _length_between(1, vs.max_answer_chars, "answer_length"))
    return _with(schema, "doc_ids", _member(doc_ids, "cited_docs_exist", every=True))


def feedback_schema() -> pa.DataFrameSchema:
    return FeedbackModel.to_schema()


def embedding_schema(
    vs: ValidationSettings, doc_ids: Collection[str], dimension: int | None, *, unit_norm: bool = True
) -> pa.DataFrameSchema:
    """`dimension` None: the most common length among the rows is taken as the intended one."""
    schema = _with(EmbeddingModel.to_schema(), "doc_id", _member(doc_ids, "doc_exists"))
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
    return _with(ChunkModel.to_schema(), "doc_id", _member(doc_ids, "doc_exists"))


def schema_failures(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    """pandera's failure cases (column, check, failure_case, index), empty when every row passes."""
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return exc.failure_cases
    return pd.DataFrame(columns=["schema_context", "column", "check", "check_number", "failure_case", "index"])
