"""Guardrails around the model: an injection screen on the question, PII redaction and a deny-list on the answer.

They live in the RAG pipeline, not in the service, so `ask`, the evals and the API all see the same
behaviour, and the safety evals measure what users get. They are deliberately plain regular expressions:
cheap, deterministic and auditable; a team that needs a classifier puts it behind the same interface.

The injection screen reads every view `screen_views` gives of a question: format characters (Unicode Cf:
zero-width, bidi, tags) and accents stripped, NFKC, look-alike Cyrillic/Greek/Armenian letters folded to
Latin; the text hidden in tag characters; reversed text behind a right-to-left override; spaced-out
letters joined; and decoded base64 runs. Its rules cover English, German, French and Spanish (and the
commonest Italian, Portuguese and Dutch verbs). `evals/safety/heldout_attacks.jsonl`, never used to tune
them, measures how far they generalise; the eval gate holds its block rate and the false positives on
the sample questions.

Streaming keeps the same guarantees through `OutputScreen`: text is released at any character boundary
that no PII match or deny-listed phrase can still straddle (only the end of the text that the next tokens
could still turn into one is held back), so a redaction or a deny-listed phrase is never half-sent, and
text without spaces (CJK, URLs, code) streams as it is generated.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from docs_assistant.config import GuardrailSettings

# The screen reads ASCII-folded text (see `_fold`): accents are gone, so one rule covers "précédentes" and
# "precedentes", and look-alike letters have become the Latin ones they imitate.
_IGNORE_VERBS = (
    r"ignor\w*|disregard\w*|forget|forgets|forgot|set aside|put aside|cast aside|discard\w*|abandon\w*|throw (out|away)"
    r"|wipe|erase|pay no attention to|never mind|stop (following|obeying)|(do not|don't|no longer) (follow|obey)"
    r"|vergiss|vergessen|missacht\w*|uberg\w*|verwirf|ausser kraft"  # de
    r"|oubli\w*|fais abstraction|faites abstraction|ne tiens pas compte|ne tenez pas compte|fais fi|neglige\w*"  # fr
    r"|olvid\w*|haz caso omiso|hagas caso omiso|no hagas caso|descarta\w*|omite|pasa por alto|desobedece"  # es
    r"|dimentica\w*|trascura|esquec\w*|desconsider\w*|negeer|vergeet"  # it, pt, nl
)
_WEAK_VERBS = r"skip|bypass|override|overrule|drop|circumvent|get around|cancel|reset|clear"
_ORDERS = (
    r"instructions?|instruct\w*|directives?|guidelines?|guidance|directions|prompts?|programming|system message"
    r"|anweisung\w*|vorgaben|richtlinien|instruktion\w*|befehle|systemprompt|regeln"  # de
    r"|consignes?|directives?|regles"  # fr
    r"|instrucciones|indicaciones|directrices|normas|reglas"  # es
    r"|istruzioni|regole|indicazioni|instrucoes|regras|diretrizes|instructies|regels|aanwijzingen"  # it, pt, nl
)
_BEFORE = (
    r"previous|prior|above|earlier|preceding|original|initial|old|your|these|those|system|safety|so far|until now"
    r"|up to (this|now)|before|bisherig\w*|vorherig\w*|fruher\w*|obig\w*|deine\w*|precedent\w*|ci-dessus|anterieur\w*"
    r"|tes|vos|anteriores|previas|de arriba|tus|precedenti|anteriores|vorige|eerdere"
)
_TOLD = (
    r"(you (were|have been|'ve been|got)|you've|you have) (told|given|instructed|taught|asked|programmed|received)"
    r"|(was|were) (said|given) to you|dir\b.{0,20}\b(gesagt|aufgetragen|befohlen)|qu'on t'a (dit|donne)"
    r"|on t'a dit|te (dijeron|han dicho|dije)|ti (hanno|e stato) detto"
)
_REVEAL = (
    r"reveal|show|print|repeat|output|display|leak|dump|tell me|recite|copy|paste|spell out|summari[sz]e|disclose"
    r"|write (out|down)|list|give me|share|echo|what (is|are|was|were)|translate"
    r"|zeig\w*|gib\w*|nenn\w*|wiederhol\w*|verrat\w*|ausgeben|was steht|wie lauten"  # de
    r"|montre\w*|affiche\w*|repete\w*|revele\w*|donne\w*|ecri\w*|quel(le)?s? (est|sont)"  # fr
    r"|muestra\w*|muestrame|repite\w*|revela\w*|dime|escribe|imprime|cual(es)? (es|son)"  # es
)
_MODEL_TEXT = (
    r"system ?prompt|(hidden|initial|original|secret|developer|full|exact|complete|first) (prompt|instructions?|message)"
    r"|system (message|instructions?)|prompt (systeme|du systeme|del sistema|de sistema)|(mensaje|instrucciones) del? sistema"
    r"|systemanweisung\w*|message systeme"
)
_UNRESTRICTED = r"no|without|free of|not bound by|ignoring|zero|ohne|keine|sans|sin|senza|sem|zonder"
_LIMITS = (
    r"restrictions?|limits?|limitations?|filters?|rules|guidelines|censorship|content polic(y|ies)|safety|morals?"
    r"|ethics|boundaries|einschrankung\w*|regeln|grenzen|zensur|restriction\w*|limite\w*|filtres?|regles|censure"
    r"|restricciones|limites|filtros|reglas|censura|restrizioni|restricoes|beperkingen"
)
_PERSONA = (
    r"from now on,? you (are|will be)|you are (now|no longer)|you're (now|no longer)|roleplay|role-play|play the role"
    r"|pretend (to be|you are|you're)|imagine (you are|you're)|act as|acting as|behave (like|as)|respond as|answer as"
    r"|du bist (jetzt|nun|ab jetzt|ab sofort|ab heute)|ab (jetzt|sofort) bist du|verhalte dich|tu so als|spiel\w* die rolle"
    r"|tu es (maintenant|desormais|a present)|vous etes (maintenant|desormais)|agis comme|agissez comme|fais comme si"
    r"|joue le role|(ahora|a partir de ahora) eres|actua como|finge (ser|que)|interpreta el papel|ora sei|agora voce e"
)

#: phrasings of "ignore your instructions", "show me your prompt", role switching and template injection
INJECTION_PATTERNS: tuple[str, ...] = (
    # ignore / forget the instructions, in any of the languages above
    rf"\b({_IGNORE_VERBS})\b.{{0,50}}\b({_ORDERS})\b",
    rf"\b({_IGNORE_VERBS})\b.{{0,30}}\b(everything|anything|all|whatever|alles|tout|todo|tutto|tudo)\b.{{0,30}}"
    rf"\b({_BEFORE}|{_TOLD})\b",
    rf"\b({_IGNORE_VERBS})\b.{{0,10}}\b(the |all )?(above|preceding|foregoing)\b",
    rf"\b({_IGNORE_VERBS})\b.{{0,40}}\b(rules|context|orders|constraints|policy)\b.{{0,15}}"
    r"\b(above|before|earlier|previous|so far|until now)\b",
    r"\b(disregard\w*|forget|set aside|put aside|discard\w*|abandon\w*|throw (out|away)|pay no attention to|never mind)"
    r"\b.{0,10}\b(the|all|any|every)\b.{0,20}\b(rules|context|orders|constraints|polic(y|ies))\b",
    rf"\b({_IGNORE_VERBS}|{_WEAK_VERBS})\b.{{0,40}}\b({_BEFORE})\b.{{0,20}}\b(rules|context|orders|constraints|policy)\b",
    rf"\b({_WEAK_VERBS})\b.{{0,40}}\b({_BEFORE})\b.{{0,20}}\b({_ORDERS})\b",
    rf"\b(previous|prior|earlier|above|original|initial|old|your)\b.{{0,20}}\b({_ORDERS}|rules)\b.{{0,20}}"
    r"\b(no longer (apply|matter|count|valid)|(do not|don't|does not|doesn't) (apply|matter|count)|are (void|null|cancelled"
    r"|canceled|invalid|obsolete|suspended|revoked))\b",
    rf"\b(abstraction|caso omiso|no hagas caso|pas compte)\b.{{0,40}}\b({_BEFORE}|{_ORDERS})\b",
    # reveal the prompt: the model's own text, the first N words of it, or everything above the question
    rf"\b({_REVEAL})\b.{{0,40}}\b({_MODEL_TEXT})\b",
    rf"\b({_REVEAL})\b.{{0,30}}\b(your|deine\w*|dein|ton|tes|votre|vos|tu|tus|su|sus)\b.{{0,15}}"
    r"\b(prompt|instructions?|directives|guidelines|rules|anweisung\w*|instruktion\w*|vorgaben|regeln|consignes"
    r"|instrucciones|reglas|indicaciones)\b",
    r"\b(first|last|opening|initial)\s+(\d+|\w+)\s+(words?|lines?|characters?|chars|tokens?|sentences?|letters?"
    r"|paragraphs?)\b.{0,40}\b(prompt|instructions?|system|message|context)",
    r"\b(ersten|letzten) \d+ (worter|zeilen|zeichen|satze)|\b\d+ (premiers?|dernieres?|derniers?) (mots|lignes"
    r"|caracteres|phrases)|\b(premiers?|premieres?) \d+ (mots|lignes|caracteres)|\b(primer[oa]s|ultim[oa]s) \d+ "
    r"(palabras|lineas|caracteres|frases)",
    r"\b(repeat|print|output|show|copy|recite|echo|write|display|paste)\b.{0,30}\b(everything|all|the text|the words"
    r"|what(ever)? (is|was|appears|comes|came))\b.{0,30}\b(above|before|preceding|prior)\b",
    r"\b(rules|instructions|guidelines|directives|prompt)\b.{0,20}\b(were you|you were|have you been|you have been"
    r"|you've been) (given|told|instructed|provided)",
    r"\bwhat (were|have) you (been )?(told|instructed|programmed|asked) to\b",
    rf"\b(your|ton|tu|dein\w*|votre|su)\s+({_MODEL_TEXT})\b",
    # role switching, developer mode, jailbreak personas
    rf"\b({_PERSONA})\b.{{0,60}}\b(({_UNRESTRICTED})\s+(\w+\s+){{0,2}}({_LIMITS})|unrestricted|unfiltered|uncensored"
    r"|jailbroken|evil|dan|free|libre|frei|hacker|ai|ki|ia|model|chatbot|assistant|asistente|modele|modelo)\b",
    r"\b(roleplay|role-play|play the role|pretend (to be|you are|you're)|switch (roles|role|persona)|you are (now|no longer)"
    r"|you're no longer|from now on,? you are|du bist (jetzt|nun|ab jetzt|ab sofort)|ab (jetzt|sofort) bist du"
    r"|tu es (maintenant|desormais)|vous etes (maintenant|desormais)|(ahora|a partir de ahora) eres)\b",
    r"\bi am (the|your) (system|developer|admin|administrator|creator|operator)\b",
    r"\b(ai|model|assistant|chatbot|bot|llm)\b.{0,20}\b(without|with no|free of)\b.{0,20}\b(restrictions|filters"
    r"|limits|rules|guidelines|censorship|content policy)\b",
    r"\b(developer|dev|god|jailbreak|jailbroken|dan|sudo|root|unrestricted|unfiltered|uncensored|evil) ?mode\b",
    r"\b(entwicklermodus|entwickler-modus|gottmodus)\b|\bmode (developpeur|dev|dieu|sans restriction\w*)\b"
    r"|\bmodo (desarrollador|dios|dev|sin restricciones|sviluppatore|desenvolvedor)\b",
    r"\bdo anything now\b",
    rf"\bpretend\b.{{0,40}}\b(no|without|not bound by|free of)\b.{{0,20}}\b({_LIMITS})\b",
    # chat-template control tokens and role headers
    r"<\|[a-z_]+\|>|\[/?INST\]|<</?SYS>>|<(start|end)_of_turn>|</?s>|<\|?(system|user|assistant)\|?>",
    r"^\s*#{2,}\s*(system|instruction|instructions|response|user|assistant|human)\s*:?\s*$"
    r"|^\s*#{2,}\s*(system|instructions?)\s*:",
    r"^\s*(system|assistant|developer)\s*:",
    r"\bnew (instructions?|system prompt|rules)\s*:",
)
#: a run of base64 long enough to carry an instruction; shorter runs are ordinary words and identifiers
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
#: right-to-left overrides and isolates: text behind them may be stored reversed and shown the right way round
_RTL = frozenset("\u202e\u2067\u200f\u061c")
_TAG_FIRST, _TAG_LAST = 0xE0020, 0xE007E

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
    # ASCII boundaries, not \b: after a CJK (or any non-ASCII) letter, \b sees no word start and missed the match
    "email": re.compile(
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9])"
    ),
    # digit groups joined by spaces, dashes or parentheses, 7+ digits in all; dots are left alone so
    # versions and IP addresses survive, and ISO dates have a 2-digit group that does not qualify; a dot
    # that ends the sentence (no digit or letter after it) does not save a number
    "phone": re.compile(
        r"(?<![A-Za-z0-9_.-])(?:\+\d{1,3}[ -]?)?(?:\(\d{2,4}\)[ -]?)?\d{3,4}[ -]\d{3,4}(?:[ -]\d{2,4})?"
        r"(?![A-Za-z0-9_-]|\.[A-Za-z0-9_])"
    ),
}


def _lookalikes() -> dict[int, str]:
    """Cyrillic, Greek and Armenian letters drawn like Latin ones, and Latin variants NFKC leaves alone.

    A short table on purpose (the letters of Unicode's confusables.txt that imitate ASCII letters in these
    scripts): the screen needs the imitations attackers use, not all 6,000 entries; every entry is checked
    against its Unicode name so a typo cannot map the wrong letter.
    """
    table = {
        "CYRILLIC": "a\u0430 b\u044c c\u0441 d\u0501 e\u0435 e\u0451 h\u04bb i\u0456 i\u0457 j\u0458 k\u043a m\u043c "
        "o\u043e p\u0440 q\u051b s\u0455 w\u051d x\u0445 y\u0443 A\u0410 B\u0412 C\u0421 E\u0415 H\u041d I\u0406 "
        "J\u0408 K\u041a M\u041c O\u041e P\u0420 S\u0405 T\u0422 X\u0425 Y\u0423 Q\u051a W\u051c",
        "GREEK": "a\u03b1 i\u03b9 k\u03ba n\u03b7 o\u03bf p\u03c1 u\u03c5 v\u03bd x\u03c7 y\u03b3 e\u03b5 c\u03f2 j\u03f3 "
        "A\u0391 B\u0392 E\u0395 Z\u0396 H\u0397 I\u0399 K\u039a M\u039c N\u039d O\u039f P\u03a1 T\u03a4 Y\u03a5 X\u03a7",
        "ARMENIAN": "o\u0585 u\u057d h\u0570 g\u0581 n\u0578",
        "LATIN": "i\u0131 a\u0251 g\u0261 o\u1d0f",
    }
    out = {}
    for script, pairs in table.items():
        for latin, other in pairs.split():
            assert unicodedata.name(other).startswith(script), (other, script)
            out[ord(other)] = latin
    return out


_LOOKALIKES = _lookalikes()


def _strip_format(text: str) -> str:
    """Drop every format character (Unicode category Cf: zero-width, bidi controls, tags, ...) and combining mark.

    Combining marks go too, after NFKD has split accented letters, so "précédentes" reads "precedentes" and
    marks stacked on letters (z̷a̷l̷g̷o̷) no longer break a word apart.
    """
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    return "".join(ch for ch in text if unicodedata.category(ch) not in {"Cf", "Mn", "Me"})


def _fold(text: str) -> str:
    """What the injection screen reads: no format characters or accents, look-alikes as Latin, one space, newlines kept."""
    text = _strip_format(text).translate(_LOOKALIKES).casefold()
    text = re.sub(r"[^\S\n]+", " ", text)
    return re.sub(r" ?\n\s*", "\n", text).strip()


def normalise(text: str) -> str:
    """What the deny-list compares: `_fold` with every whitespace run, newlines included, as one space."""
    return re.sub(r"\s+", " ", _fold(text))


def _hidden_tags(text: str) -> str:
    """The ASCII spelled by Unicode tag characters (U+E0020-E007E): invisible, but some models read them."""
    return "".join(chr(ord(ch) - 0xE0000) for ch in text if _TAG_FIRST <= ord(ch) <= _TAG_LAST)


def _decoded_base64(text: str) -> list[str]:
    """Every base64-looking run (16+ characters) that decodes to mostly printable UTF-8 text."""
    out = []
    for run in _BASE64_RUN.findall(text):
        body = run.rstrip("=")
        for alphabet in (None, b"-_"):
            try:
                raw = base64.b64decode(body + "=" * (-len(body) % 4), altchars=alphabet, validate=True)
                decoded = raw.decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                continue
            if decoded and sum(ch.isprintable() or ch.isspace() for ch in decoded) >= 0.9 * len(decoded):
                out.append(decoded)
                break
    return out


def screen_views(question: str, depth: int = 2) -> list[str]:
    """Every reading of a question the injection screen checks.

    The folded text; the text hidden in tag characters; the text reversed when a right-to-left control is
    present; letters spaced out one by one ("i g n o r e") joined up; and, `depth` levels deep, whatever
    base64 runs decode to.
    """
    folded = _fold(question)
    views = [folded]
    hidden = _hidden_tags(question)
    if hidden.strip():
        views.append(_fold(hidden))
    if any(ch in _RTL for ch in question):
        views.append(folded[::-1])
    joined = _fold(re.sub(r"(?<![^\W_])(\w) (?=\w(?![^\W_]))", r"\1", _strip_format(question)))
    if joined != folded:
        views.append(joined)
    if depth > 0:
        for decoded in _decoded_base64(unicodedata.normalize("NFKC", question)):
            views += screen_views(decoded, depth - 1)
    return views


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
        flags = re.IGNORECASE | re.MULTILINE | re.DOTALL
        self._injection = [re.compile(p, flags) for p in patterns]
        self._deny = [normalise(phrase) for phrase in settings.deny_list]

    @property
    def refusal(self) -> str:
        return self.settings.refusal

    def screen_question(self, question: str) -> str | None:
        """The block reason for a question that tries to steer the model, else None."""
        if not self.settings.screen_input:
            return None
        for view in screen_views(question):
            if any(p.search(view) for p in self._injection):
                return "input:prompt_injection"
        return None

    def denied(self, text: str) -> bool:
        folded = normalise(text)
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


#: characters a key, e-mail or phone match can hold besides the space (the ASCII of their classes, and every
#: Unicode digit, which `\d` takes); a cut is never placed right after one (see `OutputScreen`)
_PII_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+@()-")
#: the end of the text may still become a phone number: a digit, `+` or `(` and then only phone characters
_PHONE_TAIL = re.compile(r"[\d+(][\d+() .-]*\Z")
#: the end of the text may still become a private key's `-----BEGIN ... PRIVATE KEY-----` header
_KEY_HEADER_TAIL = re.compile(r"-{1,5}(?:B(?:E(?:G(?:I(?:N(?: [A-Z ]*-{0,5})?)?)?)?)?)?\Z")


def _pii_char(ch: str) -> bool:
    return ch in _PII_CHARS or ch.isdecimal()


class OutputScreen:
    """Screens a streamed answer piece by piece; `emit` only ever receives text that passed.

    Invariant: the emitted pieces, joined and stripped, equal `text` (what the answer records); with the
    text's redactions exactly those of `Guardrails.screen_answer` on the whole answer.

    Text is released at any character boundary that no match can still straddle, so text without spaces
    (CJK, URLs, code) streams as it is generated. What is held back is the shortest end of the text that
    the next tokens could still turn into something screened:

    - a deny-listed phrase: the deny-list compares `normalise(text)`, so the held end is the one whose
      normalised form covers the longest end of `normalise(text)` that is a proper prefix of some phrase
      (a whole phrase has already blocked the answer). `normalise` works character by character
      (NFKD of NFKC is NFKD; case folding, look-alikes, dropped format characters and marks are per
      character), except that a whitespace run becomes one space and the ends are stripped; so the
      normalised form of an end of the raw text is an end of the normalised text, at most one leading
      space shorter: holding an end whose own normalised form is long enough holds the whole partial
      phrase, look-alikes, zero-width characters and all.
    - a PII match (`PII_PATTERNS`): key and e-mail matches consist of `_PII_CHARS`, so no cut goes right
      after one of those (which also holds the trailing run, the start of a possible key or address);
      phone numbers also hold single spaces, so a trailing run that could still become one
      (`_PHONE_TAIL`) is held, and no cut splits a space from a following digit or `(`; a private key's
      header in the making (`_KEY_HEADER_TAIL`) or a key without its END line yet is held from its start,
      and a cut never falls inside a complete one.

    Each released piece is redacted on its own, with the one character before it as context: the
    patterns look at most one character behind a match (`\\b`, the address and phone look-behinds), and
    the character before a cut is never one a match can end with, so the look-aheads after an address or
    a number see what they would see in the whole text. Pieces redacted this way join up to the
    redaction of the whole answer.
    """

    def __init__(self, guardrails: Guardrails, emit: Callable[[str], None]):
        self.guardrails = guardrails
        self._emit = emit
        self._raw = ""
        self._released = 0  # raw characters already screened and emitted
        self._out: list[str] = []
        self.verdict = Verdict()
        self._phrases = sorted({phrase for phrase in guardrails._deny if phrase})

    def feed(self, piece: str) -> None:
        if self.verdict.blocked or not piece:
            return
        self._raw += piece
        # released text holds no phrase nor the start of one (see `_deny_hold`): a new match lies in the rest
        if self.guardrails.denied(self._raw[self._released :]):
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
        """The furthest raw position that may be released now (`_released` when nothing may)."""
        hold = min(self._deny_hold(), self._pii_hold())
        raw, end = self._raw, len(self._raw)
        keys = (
            [(m.start(), m.end()) for m in PII_PATTERNS["private_key"].finditer(raw, self._released)]
            if self.guardrails.settings.redact_pii
            else []
        )
        for cut in range(hold, self._released, -1):
            before = raw[cut - 1]
            after = raw[cut] if cut < end else ""
            if self.guardrails.settings.redact_pii:
                if _pii_char(before):
                    continue  # a key, address or number may end here: its look-ahead needs the next character
                if before == " " and (after.isdecimal() or after == "("):
                    continue  # inside a phone number's groups
                if any(start < cut < stop for start, stop in keys):
                    continue
            return cut
        return self._released

    def _deny_hold(self) -> int:
        """Where the shortest end of the text that may still grow into a deny-listed phrase starts."""
        raw = self._raw
        if not self._phrases:
            return len(raw)
        folded = normalise(raw[self._released :])
        partial = 0
        for phrase in self._phrases:
            for n in range(min(len(phrase) - 1, len(folded)), partial, -1):
                if folded.endswith(phrase[:n]):
                    partial = n
                    break
        start = len(raw)
        while partial and start > self._released and len(normalise(raw[start:])) < partial:
            start -= 1
        return start

    def _pii_hold(self) -> int:
        """Where the end of the text that may still become (or end) a phone number or private key starts."""
        raw, hold = self._raw, len(self._raw)
        if not self.guardrails.settings.redact_pii:
            return hold
        for tail in (_PHONE_TAIL, _KEY_HEADER_TAIL):
            m = tail.search(raw, self._released)
            if m:
                hold = min(hold, m.start())
        for m in PII_PATTERNS["private_key"].finditer(raw, self._released):
            if not m.group(1):  # ended at `$`: its END line has not arrived
                hold = min(hold, m.start())
        return hold

    def _release(self, cut: int) -> None:
        if cut <= self._released:
            return
        start = self._released
        context = 1 if start else 0
        text = self.guardrails.redact(self._raw[start - context : cut], self.verdict.redactions)[context:]
        self._released = cut
        if not self._out:
            text = text.lstrip()
        if text:
            self._out.append(text)
            self._emit(text)
