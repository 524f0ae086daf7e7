"""Lenient readers for the validate stage: every input row becomes a record, however broken it is.

Unlike `corpus.load_corpus`, which refuses the first bad file, these keep going so that every row can be
either validated or quarantined with its reason: rows in = valid + quarantined. A record remembers the
file and line it came from (and the line of each front-matter key), so every failure can name them.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from docs_assistant.config import ValidationSettings
from docs_assistant.data.clean import clean_body, normalize_field
from docs_assistant.data.corpus import _NOT_STRINGS, _PLAIN_LINE, load_front_matter

RAW_LIMIT = 65_536  # characters of the original row kept in the quarantine table
FRONT_MATTER = ("id", "title", "source")
FRONT_MATTER_OPTIONAL = ("updated",)
QA_FIELDS = ("id", "question", "answer", "doc_ids")
#: question and answer are optional: what the rated answer answered (the service's export carries them), without
#: which a rating cannot become a training pair
FEEDBACK_FIELDS = ("id", "answer_id", "rating", "correction", "created_at", "question", "answer")
EMBEDDING_FIELDS = ("doc_id", "vector")


@dataclass
class Record:
    """One input row: where it came from, its raw text, and its parsed values (None if unparseable)."""

    kind: str
    file: str
    line: int
    raw: str
    values: dict[str, Any] | None = None
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, name: str | None) -> int:
        return self.lines.get(name or "", self.line)


@dataclass
class ReadProblem:
    """A row that could not be parsed; it is quarantined under `check`."""

    record: int
    check: str
    field: str
    message: str
    line: int


@dataclass
class Read:
    records: list[Record] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (file or dir, message): nothing to read


def shown_path(path: Path, root: Path | None) -> str:
    return str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)


def _front_matter(text: str) -> tuple[dict[str, Any], str, dict[str, int]] | tuple[None, str, str]:
    """(meta, body, key lines) or (None, problem, field)."""
    if not text.startswith("---\n"):
        return None, "missing front matter: the file must start with a '---' line", "front_matter"
    end = text.find("\n---\n", 3)
    if end < 0:
        return None, "front matter is not closed by a '---' line", "front_matter"
    header, body = text[4:end], text[end + 5 :]
    plain = _plain_front_matter(header)
    if plain is not None:
        return plain[0], body, plain[1]
    try:
        meta = load_front_matter(header)
    except yaml.YAMLError as exc:
        return None, f"malformed front matter: {getattr(exc, 'problem', None) or exc}", "front_matter"
    if not isinstance(meta, dict):
        return None, "front matter must be a mapping of key: value", "front_matter"
    lines = {}
    for number, row in enumerate(header.split("\n"), start=2):
        key = row.split(":", 1)[0].strip()
        if key and ":" in row:
            lines.setdefault(key, number)
    lines["text"] = header.count("\n") + 4
    return meta, body, lines


_MARKDOWN = re.compile(fnmatch.translate("*.md")).fullmatch


def markdown_files(docs_dir: Path) -> list[str]:
    """The paths `sorted(docs_dir.rglob("*.md"))` gives, as strings: `os.scandir` and a sort on path parts.

    Same walk as pathlib's (symlinked directories are not entered, unreadable ones are skipped) and same
    order (part by part, so `a/b.md` sorts before `a-b.md`), without a `Path` per file: on 100,000 pages
    the pathlib walk and sort take longer than reading the files.
    """
    found: list[str] = []
    pending = [str(docs_dir)]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except PermissionError:
            continue
        for entry in entries:
            if _MARKDOWN(entry.name):
                found.append(entry.path)
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                pending.append(entry.path)
    base = len(str(docs_dir)) + 1
    return sorted(found, key=lambda p: p[base:].split("/"))


def _read_head(path: str, limit: int) -> bytes:
    """At most `limit` bytes of a file (a 50 MB page is never read whole), without a file object."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, limit)
        while len(data) < limit and (more := os.read(fd, limit - len(data))):
            data += more
    finally:
        os.close(fd)
    return data


def _plain_front_matter(header: str) -> tuple[dict[str, Any], dict[str, int]] | None:
    """`load_front_matter`'s no-YAML case and the key lines in one pass; None when a row needs YAML."""
    meta: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for number, row in enumerate(header.split("\n"), start=2):
        m = _PLAIN_LINE.match(row)
        if not m or m.group(1) in meta or m.group(2).strip().lower() in _NOT_STRINGS:
            return None
        meta[m.group(1)] = m.group(2).strip()
        lines[m.group(1)] = number
    lines["text"] = header.count("\n") + 4
    return meta, lines


def read_documents(docs_dir: Path, root: Path | None, vs: ValidationSettings) -> Read:
    read = Read()
    shown_dir = shown_path(docs_dir, root)
    if not docs_dir.is_dir():
        read.missing.append((shown_dir, "documents directory not found (set paths.data_dir or --data-dir)"))
        return read
    paths = markdown_files(docs_dir)
    if not paths:
        read.missing.append((shown_dir, "no *.md documents found: the data directory is empty"))
    base, prefix = len(str(docs_dir)) + 1, shown_dir + "/"  # string slicing: Path.relative_to costs 30 us a file
    for path in paths:
        shown = prefix + path[base:]
        record = Record("documents", shown, 1, "")
        read.records.append(record)
        pos = len(read.records) - 1
        raw = _read_head(path, vs.max_document_bytes + 1)  # one byte past the limit tells it is too large
        if len(raw) > vs.max_document_bytes:
            size = os.stat(path).st_size
            record.raw = f"<{size} bytes, not read>"
            read.problems.append(
                ReadProblem(pos, "max_bytes", "text", f"file is {size:,} bytes, limit {vs.max_document_bytes:,}", 1)
            )
            continue
        try:
            text = raw.decode("utf-8").replace("\r\n", "\n")
            record.raw = text[:RAW_LIMIT]
        except UnicodeDecodeError as exc:
            record.raw = raw[:RAW_LIMIT].decode("utf-8", "replace")
            line = raw[: exc.start].count(b"\n") + 1
            meta, _, key_lines = _front_matter(raw.decode("utf-8", "replace").replace("\r\n", "\n"))
            name = "front_matter"
            if isinstance(meta, dict) and isinstance(key_lines, dict):
                on_line = [k for k, n in key_lines.items() if n == line and k != "text"]
                name = "text" if line >= key_lines["text"] else (on_line[0] if on_line else name)
            read.problems.append(
                ReadProblem(pos, "utf8", name, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save as UTF-8", line)
            )
            continue
        meta, body, lines = _front_matter(text)
        if meta is None:
            read.problems.append(ReadProblem(pos, "front_matter", str(lines), str(body), 1))
            continue
        assert isinstance(lines, dict)
        assert isinstance(body, str)
        allowed = (*FRONT_MATTER, *FRONT_MATTER_OPTIONAL)
        title = meta.get("title")
        record.line = 2
        record.lines = lines
        record.values = {
            "id": meta.get("id"),
            "title": normalize_field(title) if isinstance(title, str) else title,
            "source": meta.get("source"),
            "updated": meta.get("updated"),
            "text": clean_body(body, vs.boilerplate_patterns),
            "extra": sorted(str(k) for k in meta if k not in allowed),
        }
    return read


def read_jsonl(
    path: Path,
    root: Path | None,
    kind: str,
    fields: tuple[str, ...],
    *,
    extra_values: dict[str, Any] | None = None,
    text_fields: tuple[str, ...] = (),
    read: Read | None = None,
) -> Read:
    """One record per non-blank line; undecodable or non-JSON lines become problems with their line number."""
    read = read or Read()
    shown = shown_path(path, root)
    for number, raw_line in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not raw_line.strip():
            continue
        record = Record(kind, shown, number, "")
        read.records.append(record)
        pos = len(read.records) - 1
        try:
            line = raw_line.decode("utf-8")
            record.raw = line[:RAW_LIMIT]
        except UnicodeDecodeError as exc:
            record.raw = raw_line[:RAW_LIMIT].decode("utf-8", "replace")
            read.problems.append(
                ReadProblem(
                    pos,
                    "utf8",
                    _field_with_replacement(record.raw) or "json",
                    f"not valid UTF-8 (byte 0x{raw_line[exc.start]:02x} at column {exc.start + 1}); save as UTF-8",
                    number,
                )
            )
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            read.problems.append(
                ReadProblem(
                    pos,
                    "json",
                    _last_key(line[: exc.pos]) or "json",
                    f"invalid JSON, is the line truncated? {exc.msg} at column {exc.colno}",
                    number,
                )
            )
            continue
        if not isinstance(obj, dict):
            read.problems.append(ReadProblem(pos, "json", "json", "each line must be a JSON object", number))
            continue
        values = {name: obj.get(name) for name in fields}
        for name in text_fields:
            if isinstance(values[name], str):
                values[name] = normalize_field(values[name])
        values["extra"] = sorted(k for k in obj if k not in fields)
        record.values = values | (extra_values or {})
    return read


def _field_with_replacement(text: str) -> str | None:
    """Which field holds the undecodable byte: decode with U+FFFD, parse, find the value holding it."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(obj, dict):
        for key, value in obj.items():
            if "\ufffd" in json.dumps(value, ensure_ascii=False):
                return str(key)
    return None


def _last_key(prefix: str) -> str | None:
    """The field a truncated line stopped in: the last `"key":` before the error."""
    keys = re.findall(r'"([^"\\]+)"\s*:', prefix)
    return keys[-1] if keys else None
