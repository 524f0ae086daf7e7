"""Guardrails around the model: an injection screen on the question, PII redaction and a deny-list on the answer.

They live in the RAG pipeline, not in the service, so `ask`, the evals and the API all see the same
behaviour, and the safety evals measure what users get. They are deliberately plain regular expressions:
cheap, deterministic and auditable; a team that needs a classifier puts it behind the same interface.

Streaming keeps the same guarantees through `OutputScreen`: text is released only up to a whitespace
boundary that no PII match straddles, at least `MAX_DENY_PHRASE_CHARS` behind the newest token, so a
redaction or a deny-listed phrase is never half-sent.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from docs_assistant.config import MAX_DENY_PHRASE_CHARS, GuardrailSettings

#: phrasings of "ignore your instructions", "show me your prompt" and role or template injection
INJECTION_PATTERNS: tuple[str, ...] = (
    r"\b(ignore|disregard|forget|override|bypass|skip)\b.{0,40}\b(previous|prior|above|earlier|preceding|all|your|the|system|safety)\b.{0,20}\b(instructions?|prompts?|rules|directions|guidelines|context|messages?)\b",
    r"\b(reveal|show|print|repeat|output|display|leak|dump|tell me|what (is|are|was|were))\b.{0,30}\b(your|the)\b.{0,20}\b(system|hidden|initial|original|secret|developer)\b.{0,10}\b(prompt|instructions?|message|rules)\b",
    r"\byou are (now|no longer)\b.{0,40}\b(dan|jailbroken|unrestricted|unfiltered|free|evil|developer mode)\b",
    r"\b(developer|god|jailbreak|dan) mode\b",
    r"\bdo anything now\b",
    r"\bpretend\b.{0,40}\b(no|without|not bound by|free of)\b.{0,20}\b(rules|restrictions|guidelines|filters|limits)\b",
    r"<\|(im_start|im_end|system|user|assistant|endoftext)\|>|\[/?INST\]|<</?SYS>>|^\s*#{2,}\s*(system|instruction)s?\s*:",
    r"\bnew instructions?\s*:",
)

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))

#: kind -> pattern; order matters: keys before phones (a key may contain digit runs)
PII_PATTERNS: dict[str, re.Pattern[str]] = {
    "private_key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)"),
    "key": re.compile(
        r"\b(?:sk|pk|rk)[-_](?:live[-_]|test[-_]|proj[-_])?[A-Za-z0-9_-]{16,}"
        r"|\bAKIA[0-9A-Z]{16}\b"
        r"|\bgh[pousr]_[A-Za-z0-9]{30,}"
        r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"
        r"|\b(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{32,}"
    ),
    "email": re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
    # digit groups joined by spaces, dashes or parentheses, 7+ digits in all; dots are left alone so
    # versions and IP addresses survive, and ISO dates have a 2-digit group that does not qualify; a dot
    # that ends the sentence (no digit or letter after it) does not save a number
    "phone": re.compile(
        r"(?<![\w.-])(?:\+\d{1,3}[ -]?)?(?:\(\d{2,4}\)[ -]?)?\d{3,4}[ -]\d{3,4}(?:[ -]\d{2,4})?(?![\w-]|\.\w)"
    ),
}


def normalise(text: str) -> str:
    """What the screens look at: NFKC (full-width and ligature tricks), no zero-width characters, one space."""
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    return re.sub(r"\s+", " ", text)


@dataclass
class Verdict:
    """What the guardrails did to one answer: the block reason (if any) and redactions by kind."""

    blocked: str | None = None
    redactions: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {"blocked": self.blocked, "redactions": dict(self.redactions)}


class Guardrails:
    def __init__(self, settings: GuardrailSettings):
        self.settings = settings
        patterns = [*INJECTION_PATTERNS, *settings.extra_injection_patterns]
        self._injection = [re.compile(p, re.IGNORECASE | re.MULTILINE) for p in patterns]
        self._deny = [phrase.casefold() for phrase in settings.deny_list]

    @property
    def refusal(self) -> str:
        return self.settings.refusal

    def screen_question(self, question: str) -> str | None:
        """The block reason for a question that tries to steer the model, else None."""
        if not self.settings.screen_input:
            return None
        text = normalise(question)
        return "input:prompt_injection" if any(p.search(text) for p in self._injection) else None

    def denied(self, text: str) -> bool:
        folded = normalise(text).casefold()
        return any(phrase in folded for phrase in self._deny)

    def redact(self, text: str, counts: Counter[str]) -> str:
        if not self.settings.redact_pii:
            return text
        for kind, pattern in PII_PATTERNS.items():
            text, n = pattern.subn(f"[redacted {kind.replace('_', ' ')}]", text)
            if n:
                counts[kind] += n
        return text

    def screen_answer(self, text: str) -> tuple[str, Verdict]:
        """The whole answer at once: refusal if deny-listed, else the text with PII redacted."""
        verdict = Verdict()
        if self.denied(text):
            verdict.blocked = "output:deny_list"
            return self.refusal, verdict
        return self.redact(text, verdict.redactions), verdict

    def stream(self, emit: Callable[[str], None]) -> OutputScreen:
        return OutputScreen(self, emit)


class OutputScreen:
    """Screens a streamed answer piece by piece; `emit` only ever receives text that passed.

    Invariant: the emitted pieces, joined and stripped, equal `text` (what the answer records).
    """

    def __init__(self, guardrails: Guardrails, emit: Callable[[str], None]):
        self.guardrails = guardrails
        self._emit = emit
        self._raw = ""
        self._released = 0  # raw characters already screened and emitted
        self._out: list[str] = []
        self.verdict = Verdict()

    def feed(self, piece: str) -> None:
        if self.verdict.blocked or not piece:
            return
        self._raw += piece
        if self.guardrails.denied(self._raw):
            self.verdict.blocked = "output:deny_list"
            return
        self._release(self._safe_cut())

    def close(self) -> tuple[str, Verdict]:
        """Flush what was held back; returns the recorded answer text and the verdict."""
        if self.verdict.blocked:
            return self.guardrails.refusal, self.verdict
        self._release(len(self._raw))
        return "".join(self._out).strip(), self.verdict

    def _safe_cut(self) -> int:
        limit = len(self._raw) - MAX_DENY_PHRASE_CHARS
        cut = max((m.start() for m in re.finditer(r"\s", self._raw[self._released : limit])), default=-1)
        if cut < 0:
            return self._released
        cut += self._released
        moved = True
        while moved:  # a cut moved back to one match's start may fall inside another's
            moved = False
            for pattern in PII_PATTERNS.values():
                for m in pattern.finditer(self._raw, self._released):
                    if m.start() < cut < m.end():
                        cut, moved = m.start(), True
        return cut

    def _release(self, cut: int) -> None:
        if cut <= self._released:
            return
        text = self.guardrails.redact(self._raw[self._released : cut], self.verdict.redactions)
        self._released = cut
        if not self._out:
            text = text.lstrip()
        if text:
            self._out.append(text)
            self._emit(text)
