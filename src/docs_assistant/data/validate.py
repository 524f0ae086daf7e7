"""The validate stage: clean, validate and quarantine `data/`, then ingest the valid rows (or nothing).

Order: read every row leniently (readers), clean it (clean), check it against the pandera contracts
(schemas) and the quality checks (quality), write each invalid row with its reasons to the `quarantine`
table, and decide the gate. Only when the gate passes are the valid rows ingested, each feature table in
one commit; when it fails the feature tables are not touched. Rows in = valid + quarantined, per kind.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from docs_assistant.config import Settings
from docs_assistant.data import quality, schemas
from docs_assistant.data.readers import (
    EMBEDDING_FIELDS,
    FEEDBACK_FIELDS,
    QA_FIELDS,
    Read,
    Record,
    read_documents,
    read_jsonl,
)
from docs_assistant.errors import DataError
from docs_assistant.io import sha256_text
from docs_assistant.reports import markdown_table, write_report

STAGE = "validate_data"
KINDS = ("documents", "qa", "feedback", "embeddings")
FEEDBACK_TEXT = ("correction", "question", "answer")  # cleaned like every text the pipeline keeps
DOC_COLUMNS = ("id", "title", "source", "text", "updated", "extra")
#: dataframe-wide checks report every column; this is the one a user should look at
FRAME_CHECK_FIELD = {"question_in_both_splits": "question"}


@dataclass(frozen=True)
class Failure:
    """One reason one row failed: what a user reads, and what the quarantine table stores."""

    kind: str
    check: str
    file: str
    line: int | None
    field: str | None
    message: str
    record: int | None = None
    quarantines: bool = True

    def error(self) -> DataError:
        return DataError(f"{self.message} [{self.check}]", file=self.file, line=self.line, field=self.field)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "record"}


@dataclass
class CheckResult:
    name: str
    kind: str
    quarantines: bool
    failures: list[Failure] = field(default_factory=list)
    rows_checked: int = 0
    max_share: float | None = None

    @property
    def share(self) -> float:
        return len({f.record for f in self.failures}) / self.rows_checked if self.rows_checked else 0.0

    @property
    def passed(self) -> bool:
        if self.max_share is None:
            return not self.failures or self.quarantines  # schema checks gate through the invalid share
        return self.share <= self.max_share


@dataclass
class ValidationResult:
    run_id: str
    data_dir: str
    records: dict[str, list[Record]]
    checks: dict[str, CheckResult]
    fatal: list[Failure]
    thresholds: dict[str, Any]
    contracts: dict[str, list[str]] = field(default_factory=dict)
    ingested: bool = False
    table_versions: dict[str, int] = field(default_factory=dict)
    quarantine_version: int | None = None

    def quarantined(self, kind: str) -> set[int]:
        return {
            f.record
            for c in self.checks.values()
            for f in c.failures
            if f.kind == kind and f.quarantines and f.record is not None
        }

    def valid(self, kind: str) -> list[Record]:
        bad = self.quarantined(kind)
        return [r for i, r in enumerate(self.records[kind]) if i not in bad]

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        out = {}
        for kind in KINDS:
            rows_in, bad = len(self.records[kind]), len(self.quarantined(kind))
            out[kind] = {"in": rows_in, "valid": rows_in - bad, "quarantined": bad}
        out["total"] = {k: sum(out[kind][k] for kind in KINDS) for k in ("in", "valid", "quarantined")}
        return out

    @property
    def invalid_share(self) -> float:
        total = self.counts["total"]
        return total["quarantined"] / total["in"] if total["in"] else 0.0

    @property
    def passed(self) -> bool:
        return (
            not self.fatal
            and self.invalid_share <= self.thresholds["max_invalid_share"]
            and all(c.passed for c in self.checks.values())
        )

    def failures(self) -> list[Failure]:
        return self.fatal + [f for c in self.checks.values() for f in c.failures]


def _frame(records: list[Record], columns: tuple[str, ...]) -> pd.DataFrame:
    """The parsed records, indexed by their position among all records of their kind; missing values
    (None, NaN, NaT, NA) are None.

    Column by column into object arrays (`fromiter`: a list stays one cell, never a nested array), with
    the nulls set to None in each array: a third of the time of Series from lists and a frame-wide `where`.
    """
    index = [i for i, r in enumerate(records) if r.values is not None]
    values = [records[i].values for i in index]
    data = {}
    for name in columns:
        column = np.fromiter((v.get(name) for v in values), dtype=object, count=len(values))  # type: ignore[union-attr]
        column[pd.isna(column)] = None
        data[name] = column
    return pd.DataFrame(data, index=index, columns=list(columns), dtype=object)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Checks:
    """Collects failures per check name, in the order the checks ran."""

    def __init__(self) -> None:
        self.results: dict[str, CheckResult] = {}
        self.contracts: dict[str, list[str]] = {}

    def result(self, name: str, kind: str, quarantines: bool, rows: int, max_share: float | None) -> CheckResult:
        key = f"{kind}.{name}"
        if key not in self.results:
            self.results[key] = CheckResult(name, kind, quarantines, rows_checked=rows, max_share=max_share)
        return self.results[key]

    def add(self, failure: Failure, rows: int, max_share: float | None = None) -> None:
        self.result(failure.check, failure.kind, failure.quarantines, rows, max_share).failures.append(failure)

    def flags(
        self,
        kind: str,
        name: str,
        records: list[Record],
        positions: list[int],
        flags: quality.Flags,
        *,
        quarantines: bool,
        max_share: float,
        field_name: str = "text",
    ) -> None:
        """A quality check's flags (keyed by position in `positions`) as failures; an empty check is recorded too."""
        self.result(name, kind, quarantines, len(records), max_share)
        for pos, reason in sorted(flags.items()):
            record = records[positions[pos]]
            failure = Failure(
                kind, name, record.file, record.line_of(field_name), field_name, reason, positions[pos], quarantines
            )
            self.add(failure, len(records), max_share)


def _schema_failures(
    checks: _Checks, kind: str, schema: Any, frame: pd.DataFrame, records: list[Record], context: dict[str, Any]
) -> set[int]:
    """Run a pandera schema; one failure per (row, check, field), each with file, line and a plain message."""
    checks.contracts[kind] = contract_checks(schema)
    if frame.empty:
        return set()
    cases = schemas.schema_failures(schema, frame)
    seen: set[tuple[int, str, str]] = set()
    bad: set[int] = set()
    for case in cases.itertuples(index=False):
        if case.index is None or pd.isna(case.index):
            raise DataError(f"schema error without a row: {case.check} on {case.column}", file=kind)
        pos = int(case.index)
        name = str(case.check)
        column = FRAME_CHECK_FIELD.get(name, str(case.column))
        record = records[pos]
        value = frame.at[pos, column] if column in frame.columns else None
        if name == "no_extra_fields":
            column = str(value[0])
        if (pos, name, column) in seen:
            continue
        seen.add((pos, name, column))
        bad.add(pos)
        message = schemas.MESSAGES.get(name, name) + _detail(name, value, frame, pos, records, context)
        checks.add(Failure(kind, name, record.file, record.line_of(column), column, message, pos), len(records))
    return bad


def contract_checks(schema: Any) -> list[str]:
    """The names of every check a pandera schema runs (nullability included), for the report."""
    names = ["not_nullable"]
    for column in schema.columns.values():
        names += [c.name for c in column.checks if c.name]
    names += [c.name for c in schema.checks if c.name]
    return sorted(set(names))


def _detail(name: str, value: Any, frame: pd.DataFrame, pos: int, records: list[Record], ctx: dict[str, Any]) -> str:
    if name in {"is_text", "rating_range", "optional_text", "doc_id_list", "vector_numbers", "answer_id_format"}:
        return f", got {type(value).__name__} {_short(value)}"
    if name == "unique_id":
        first = next(i for i in frame.index if frame.at[i, "id"] == value)
        return f" {value!r}, first at {records[first].file}:{records[first].line}"
    if name.endswith("_length") and isinstance(value, str):
        return f" ({len(value):,} characters)"
    if name == "cited_docs_exist":
        return f": {sorted(d for d in value if d not in ctx['doc_ids'])}"
    if name == "doc_exists":
        return f": {value!r}"
    if name == "question_in_both_splits":
        key = " ".join(str(value).lower().split())
        first = next(
            i
            for i in frame.index
            if frame.at[i, "split"] == "train" and " ".join(str(frame.at[i, "question"]).lower().split()) == key
        )
        return f" (also {records[first].file}:{records[first].line})"
    if name == "vector_dimension":
        return f" ({len(value)})"
    if name in {"updated_date", "timestamp", "split_known", "source_format", "doc_id_format", "isin"}:
        return f", got {_short(value)}"
    return ""


def _read_problems(checks: _Checks, read: Read, kind: str) -> set[int]:
    for p in read.problems:
        record = read.records[p.record]
        checks.add(Failure(kind, p.check, record.file, p.line, p.field, p.message, p.record), len(read.records))
    return {p.record for p in read.problems}


def _vectors(records: list[Record], positions: list[int]) -> np.ndarray:
    return np.asarray([records[p].values["vector"] for p in positions], dtype=np.float32)  # type: ignore[index]


def validate(settings: Settings, data_dir: Path | None = None) -> ValidationResult:
    """Read, clean and check everything under `data_dir`; writes nothing."""
    vs = settings.validation
    data_dir = Path(data_dir or settings.paths.data_dir)
    root = data_dir.parent
    checks = _Checks()
    fatal: list[Failure] = []

    if not data_dir.is_dir():
        fatal.append(Failure("documents", "not_empty", str(data_dir), None, None, "data directory not found"))
    elif not any(data_dir.iterdir()):
        message = "data directory is empty: add docs/*.md and qa/train.jsonl, qa/eval.jsonl"
        fatal.append(Failure("documents", "not_empty", str(data_dir), None, None, message))
    docs = read_documents(data_dir / "docs", root, vs)
    qa = _read_qa(data_dir / "qa", root, fatal)
    feedback = Read()
    for path in sorted((data_dir / "feedback").glob("*.jsonl")):
        read_jsonl(path, root, "feedback", FEEDBACK_FIELDS, text_fields=FEEDBACK_TEXT, read=feedback)
    embeddings = Read()
    for path in sorted((data_dir / "embeddings").glob("*.jsonl")):
        read_jsonl(path, root, "embeddings", EMBEDDING_FIELDS, read=embeddings)
    fatal += [Failure("documents", "not_empty", where, None, None, message) for where, message in docs.missing]

    # documents: contract, then the quality checks that quarantine, then the ones that only count
    bad_docs = _read_problems(checks, docs, "documents")
    frame = _frame(docs.records, DOC_COLUMNS)
    bad_docs |= _schema_failures(checks, "documents", schemas.document_schema(vs), frame, docs.records, {})
    ok = [i for i in range(len(docs.records)) if i not in bad_docs]
    texts = [docs.records[i].values["text"] for i in ok]  # type: ignore[index]
    ids = [docs.records[i].values["id"] for i in ok]  # type: ignore[index]
    words = quality.word_ids(texts)  # shared by the duplicate check and the hashed embeddings
    screened = quality.screen(texts)  # the only pages that can have encoding or PII findings
    n = len(docs.records)
    for name, flags, share in (
        ("duplicate_content", quality.exact_duplicates(ids, texts, words), vs.max_duplicate_share),
        ("encoding", quality.encoding_problems(texts, screened), vs.max_encoding_share),
        ("pii", quality.pii_findings(texts, vs, screened), vs.max_pii_share),
    ):
        checks.flags("documents", name, docs.records, ok, flags, quarantines=True, max_share=share)
    bad_docs = {f.record for f in checks_failures(checks, "documents")}
    checked = {pos: k for k, pos in enumerate(ok)}
    ok = [i for i in range(n) if i not in bad_docs]
    doc_ids = {docs.records[i].values["id"] for i in ok}  # type: ignore[index]

    # embeddings (optional, bring your own): contract, then they stand in for the hashed ones
    bad_emb = _read_problems(checks, embeddings, "embeddings")
    eframe = _frame(embeddings.records, (*EMBEDDING_FIELDS, "extra"))
    bad_emb |= _schema_failures(
        checks,
        "embeddings",
        schemas.embedding_schema(vs, doc_ids, None),
        eframe,
        embeddings.records,
        {"doc_ids": doc_ids},
    )
    given = {
        embeddings.records[i].values["doc_id"]: i  # type: ignore[index]
        for i in range(len(embeddings.records))
        if i not in bad_emb
    }

    ok_texts = [docs.records[i].values["text"] for i in ok]  # type: ignore[index]
    ok_ids = [docs.records[i].values["id"] for i in ok]  # type: ignore[index]
    if given and all(d in given for d in ok_ids):  # mixing two embedding spaces would compare nonsense
        vectors = _vectors(embeddings.records, [given[d] for d in ok_ids])
    else:
        vectors = quality.hashed_embeddings(ok_texts, words=words.take([checked[i] for i in ok]))
    for name, flags, share in (
        (
            "near_duplicate",
            quality.near_duplicates(ok_ids, vectors, vs.near_duplicate_similarity),
            vs.max_near_duplicate_share,
        ),
        ("language", quality.script_problems(ok_texts, vs), vs.max_language_share),
        ("stale", quality.stale([docs.records[i].values["updated"] for i in ok], vs), vs.max_stale_share),  # type: ignore[index]
    ):
        checks.flags("documents", name, docs.records, ok, flags, quarantines=False, max_share=share)

    # QA pairs: contract plus the checks across tables (cited documents exist, no question in both splits)
    _read_problems(checks, qa, "qa")
    qframe = _frame(qa.records, ("id", "split", "question", "answer", "doc_ids", "extra"))
    _schema_failures(checks, "qa", schemas.qa_schema(vs, doc_ids), qframe, qa.records, {"doc_ids": doc_ids})

    _read_problems(checks, feedback, "feedback")
    fframe = _frame(feedback.records, (*FEEDBACK_FIELDS, "extra"))
    _schema_failures(checks, "feedback", schemas.feedback_schema(), fframe, feedback.records, {})

    return ValidationResult(
        run_id=uuid.uuid4().hex[:12],
        data_dir=str(data_dir),
        records={
            "documents": docs.records,
            "qa": qa.records,
            "feedback": feedback.records,
            "embeddings": embeddings.records,
        },
        checks=checks.results,
        contracts=checks.contracts,
        fatal=fatal,
        thresholds=vs.model_dump(),
    )


def checks_failures(checks: _Checks, kind: str) -> list[Failure]:
    return [f for c in checks.results.values() for f in c.failures if f.kind == kind and f.quarantines]


def _read_qa(qa_dir: Path, root: Path, fatal: list[Failure]) -> Read:
    read = Read()
    for split in schemas.QA_SPLITS:
        path = qa_dir / f"{split}.jsonl"
        if not path.is_file():
            shown = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            fatal.append(Failure("qa", "file_exists", shown, None, None, f"QA file not found: add {split}.jsonl"))
            continue
        read_jsonl(
            path, root, "qa", QA_FIELDS, extra_values={"split": split}, text_fields=("question", "answer"), read=read
        )
    return read


# --- writing: quarantine always, feature tables only when the gate passes -------------------------------


def write_quarantine(settings: Settings, result: ValidationResult) -> int | None:
    """Append this run's invalid rows with their reasons (one row per reason) in one commit."""
    import pyarrow as pa

    from docs_assistant.data.store import QUARANTINE, SCHEMAS, FeatureStore

    rows = []
    at = datetime.now(UTC)
    for failure in result.failures():
        if not failure.quarantines or failure.record is None:
            continue
        record = result.records[failure.kind][failure.record]
        rows.append(
            {
                "run_id": result.run_id,
                "at": at,
                "kind": failure.kind,
                "file": failure.file,
                "line": failure.line,
                "field": failure.field,
                "check": failure.check,
                "message": failure.message,
                "raw": record.raw,
            }
        )
    if not rows:
        return None
    store = FeatureStore(settings.paths.store_uri)
    data = pa.Table.from_pylist(rows, schema=SCHEMAS[QUARANTINE])
    if not store.has_table(QUARANTINE):
        return store.db.create_table(QUARANTINE, data=data, schema=SCHEMAS[QUARANTINE]).version
    table = store.open(QUARANTINE)
    table.add(data)
    return table.version


def document_row(record: Record) -> dict[str, Any]:
    """`Document(id, title, source, text, file).row()` of a valid page, without a `Document` per page."""
    from docs_assistant.data.corpus import document_row as row

    v = record.values
    assert v is not None
    return row(v["id"], v["title"], v["source"], v["text"], record.file)


def ingest_valid(settings: Settings, result: ValidationResult) -> dict[str, int]:
    """The valid rows, exactly as validated, into the feature tables (one commit per changed table)."""
    from docs_assistant.data.corpus import QAPair
    from docs_assistant.data.ingest import ingest_rows
    from docs_assistant.data.store import FEEDBACK, FeatureStore

    documents = [document_row(r) for r in result.valid("documents") if r.values is not None]
    qa = [
        QAPair(v["id"], v["split"], v["question"], v["answer"], tuple(v["doc_ids"]), r.file, r.line).row()
        for r in result.valid("qa")
        if (v := r.values) is not None
    ]
    summary = ingest_rows(settings, documents, qa)
    feedback = [
        {
            "id": v["id"],
            "answer_id": v["answer_id"],
            "rating": v["rating"],
            "correction": v["correction"],
            "created_at": schemas.parse_timestamp(v["created_at"]),
            "content_hash": sha256_text(v["answer_id"], str(v["rating"]), v["correction"] or ""),
            "question": v["question"],
            "answer": v["answer"],
        }
        for r in result.valid("feedback")
        if (v := r.values) is not None
    ]
    versions = dict(summary["table_versions"])
    if feedback:
        versions[FEEDBACK] = FeatureStore(settings.paths.store_uri).append_new(FEEDBACK, feedback).version
    return versions


def run_validation(settings: Settings, data_dir: Path | None = None) -> ValidationResult:
    """The stage: validate, quarantine, gate, ingest if passed, report. Never raises for bad rows."""
    result = validate(settings, data_dir)
    result.quarantine_version = write_quarantine(settings, result)
    if result.passed:
        result.table_versions = ingest_valid(settings, result)
        result.ingested = True
    write_validation_report(settings, result)
    return result


# --- report -------------------------------------------------------------------------------------------


def summary_of(result: ValidationResult) -> dict[str, Any]:
    first = result.thresholds["first_failures"]
    checks = []
    for key, check in result.checks.items():
        checks.append(
            {
                "check": key,
                "kind": check.kind,
                "quarantines": check.quarantines,
                "rows_checked": check.rows_checked,
                "failed_rows": len({f.record for f in check.failures}),
                "failures": len(check.failures),
                "share": round(check.share, 6),
                "max_share": check.max_share,
                "passed": check.passed,
                "first_failures": [f.as_dict() for f in check.failures[:first]],
            }
        )
    counts = result.counts
    return {
        "stage": STAGE,
        "run_id": result.run_id,
        "data_dir": result.data_dir,
        "passed": result.passed,
        "ingested": result.ingested,
        "counts": counts,
        "rows_balance": all(c["in"] == c["valid"] + c["quarantined"] for c in counts.values()),
        "invalid_share": round(result.invalid_share, 6),
        "max_invalid_share": result.thresholds["max_invalid_share"],
        "fatal": [f.as_dict() for f in result.fatal],
        "contracts": result.contracts,
        "checks": checks,
        "table_versions": result.table_versions,
        "quarantine_version": result.quarantine_version,
        "thresholds": result.thresholds,
    }


def gate_reasons(result: ValidationResult, summary: dict[str, Any] | None = None) -> list[str]:
    """Why the gate failed, one reason each: a fatal problem (file), the invalid share over its limit, a check
    over its own limit. Empty when the gate passed."""
    if result.passed:
        return []
    summary = summary or summary_of(result)
    reasons = [f"{f.file}: {f.message}" for f in result.fatal]
    share, limit = summary["invalid_share"], summary["max_invalid_share"]
    if summary["counts"]["total"]["quarantined"] and share > limit:
        reasons.append(f"invalid share {share:.2%} > {limit:.2%}")
    return reasons + [f"check {c['check']} over its limit" for c in summary["checks"] if not c["passed"]]


def _where(f: dict[str, Any]) -> str:
    return f"{f['file']}:{f['line']}" if f["line"] is not None else f["file"]


def write_validation_report(settings: Settings, result: ValidationResult) -> Path:
    summary = summary_of(result)
    verdict = "passed" if result.passed else "**failed**: nothing was ingested"
    lines = [f"## Data validation: {verdict}", ""]
    counts = summary["counts"]
    lines.append(
        markdown_table(
            ["rows", "in", "valid", "quarantined"],
            [(k, c["in"], c["valid"], c["quarantined"]) for k, c in counts.items()],
        )
    )
    lines += ["", f"Invalid share {summary['invalid_share']:.2%} (limit {summary['max_invalid_share']:.2%}).", ""]
    for f in summary["fatal"]:
        lines.append(f"- **{_where(f)}**: {f['message']}")
    for kind, names in summary["contracts"].items():
        lines.append(f"- pandera contract `{kind}`: {', '.join(names)}")
    lines += ["", "Checks that failed rows, and every quality check:", ""]
    lines.append(
        markdown_table(
            ["check", "quarantines", "failed rows", "share", "limit", "result"],
            [
                (
                    c["check"],
                    "yes" if c["quarantines"] else "no",
                    c["failed_rows"],
                    f"{c['share']:.2%}",
                    "invalid share" if c["max_share"] is None else f"{c['max_share']:.2%}",
                    "ok" if c["passed"] and not (c["quarantines"] and c["failures"]) else "FAIL",
                )
                for c in summary["checks"]
            ],
        )
    )
    failing = [c for c in summary["checks"] if c["failures"]]
    if failing:
        lines += ["", "### First failing rows", ""]
        rows = [
            (c["check"], _where(f), f["field"] or "", f"{f['check']}: {f['message']}")
            for c in failing
            for f in c["first_failures"]
        ]
        lines.append(markdown_table(["check", "file:line", "field", "problem"], rows))
    return write_report(settings.paths.reports_dir, STAGE, summary, "\n".join(lines) + "\n")
