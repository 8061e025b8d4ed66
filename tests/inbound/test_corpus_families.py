"""The bounce reader per mail system, as a stranger would measure it.

The corpus messages are grouped by the mail system that produced them (the file name's prefix:
``lhost-postfix``, ``rfc3464``, ``arf``, ``is-not-bounce``, ...). A hand-written rule (a wording
of a reason, a shape of recipient line, a bounce subject, a status preference, ...) that matches
the messages of only one family was in effect tuned on that family, so each family is also
measured with such rules switched off ("leave one family out", LOFO): that figure is what to
expect from a mail system the rules were never shown.

A rule that matches exactly one message was in effect tuned on that message, so each message is
also measured with such rules switched off ("leave one message out", LOMO): that figure is what
to expect from new messages of the mail systems we know, the likely shape of the mail we will
read (more of the same public collections, more of the same MTAs).
"""

import importlib
import json
import os
import pkgutil
import re
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

import pytest

from inbound import parsing
from inbound.parsing import ParsedMessage, bounces, classify_message, codes, message, reasons
from inbound.parsing.codes import StatusPreference
from inbound.parsing.message import Mail, parse
from inbound.parsing.rules import Rule

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "bounces"
MEASURES = ("kind", "hard", "status", "reason")

if not (CORPUS / "labels.jsonl").is_file():
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"bounce corpus missing at {CORPUS} (REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(f"bounce corpus missing at {CORPUS}", allow_module_level=True)


@dataclass(frozen=True)
class Sample:
    name: str
    family: str
    raw: bytes
    recipients: list[dict[str, str]]

    @property
    def kind(self) -> str:
        if not self.recipients:
            return "other"
        return {"feedback": "complaint", "vacation": "auto_reply"}.get(
            self.recipients[0]["reason"], "bounce"
        )


@dataclass
class Score:
    """Right answers per measure: kind per message, the rest per failed recipient."""

    messages: int = 0
    recipients: int = 0
    right: Counter[str] = field(default_factory=Counter)
    misses: list[str] = field(default_factory=list)

    def add(self, other: "Score") -> None:
        self.messages += other.messages
        self.recipients += other.recipients
        self.right.update(other.right)
        self.misses += other.misses

    def percent(self, measure: str) -> float:
        total = self.messages if measure == "kind" else self.recipients
        return 100 * self.right[measure] / total if total else 100.0

    def cells(self) -> str:
        return "  ".join(f"{self.percent(m):5.1f}" for m in MEASURES)


def _family(name: str) -> str:
    return re.sub(r"-\d+\.eml$", "", Path(name).name)


def _samples() -> list[Sample]:
    samples = []
    for line in (CORPUS / "labels.jsonl").read_text().splitlines():
        label = json.loads(line)
        raw = (CORPUS / label["file"]).read_bytes()
        samples.append(Sample(label["file"], _family(label["file"]), raw, label["recipients"]))
    return samples


def _kind(message: ParsedMessage) -> str:
    # A delivery report (all delivered) and a reply are not bounces: "other" for this measure.
    return message.kind if message.kind in ("bounce", "complaint", "auto_reply") else "other"


def _score(samples: list[Sample]) -> Score:
    score = Score()
    for sample in samples:
        message = classify_message(sample.raw)
        score.messages += 1
        wanted_kind = sample.kind
        if wanted_kind == "bounce" and all(r["reason"] == "delivered" for r in sample.recipients):
            wanted_kind = "other"
        if _kind(message) == wanted_kind:
            score.right["kind"] += 1
        else:
            score.misses.append(f"{sample.name}: kind {message.kind}, want {wanted_kind}")
        if sample.kind != "bounce":
            continue
        for index, wanted in enumerate(sample.recipients):
            score.recipients += 1
            got = message.recipients[index] if index < len(message.recipients) else None
            for measure in ("hard", "status", "reason"):
                value = getattr(got, measure) if got is not None else None
                if value == wanted[measure]:
                    score.right[measure] += 1
                else:
                    score.misses.append(
                        f"{sample.name}[{index}]: {measure} {value!r}, want {wanted[measure]!r}"
                    )
    return score


def _texts(mail: Mail) -> list[str]:
    return [mail.full_text, mail.dsn_text]


def _report_lines(mail: Mail) -> list[str]:
    return mail.report_text.splitlines()


# Every tuple of hand-written text rules the reader consults, and the texts of a message that
# it reads them against.
TEXT_RULES: tuple[tuple[ModuleType, str, Callable[[Mail], list[str]]], ...] = (
    (reasons, "WORDINGS", _texts),
    (reasons, "DEFINITE_UNKNOWN_USER", _texts),
    (reasons, "FILTER_UNKNOWN_USER", _texts),
    (reasons, "TEMPORARY", _texts),
    (codes, "COMMANDS", _texts),
    (bounces, "BOUNCE_SUBJECTS", lambda mail: [mail.subject]),
    (bounces, "DAEMON_SENDERS", lambda mail: [mail.from_header]),
    (bounces, "BOUNCE_PHRASES", lambda mail: [mail.report_text]),
    (bounces, "RECIPIENT_LINES", _report_lines),
    (bounces, "BLOCK_ENDS", _report_lines),
    (bounces, "REPORTERS", lambda mail: [mail.report_text]),
    (bounces, "LIST_ERRORS", lambda mail: [mail.subject]),
    (bounces, "POWERMTA_CATEGORIES", lambda mail: [mail.dsn_text]),
    (message, "ORIGINAL_MARKERS", lambda mail: mail.full_text.splitlines()),
)
# Where rules are switched off: (module, name of its tuple of rules).
Switch = tuple[ModuleType, str]


def _messages_matched(samples: list[Sample]) -> dict[Switch, dict[Hashable, set[str]]]:
    """For each rule, the names of the messages it matches."""
    mails = [(s.name, parse(s.raw)) for s in samples]
    matched: dict[Switch, dict[Hashable, set[str]]] = {}
    for module, name, texts_of in TEXT_RULES:
        texts = [(sample, texts_of(mail)) for sample, mail in mails]
        matched[module, name] = {
            rule: {
                sample
                for sample, sample_texts in texts
                if any(rule.pattern.search(text) for text in sample_texts)
            }
            for rule in getattr(module, name)
        }
    matched[codes, "STATUS_PREFERENCES"] = _messages_preferring(samples)
    return matched


def _messages_preferring(samples: list[Sample]) -> dict[Hashable, set[str]]:
    """For each status preference, the messages in which it decided a status."""
    original = codes.STATUS_PREFERENCES
    applied: dict[Hashable, set[str]] = {p: set() for p in original}

    def watched(preference: StatusPreference, sample: str) -> StatusPreference:
        def applies(field_status: str, in_text: str) -> bool:
            hit = preference.applies(field_status, in_text)
            if hit:
                applied[preference].add(sample)
            return hit

        return replace(preference, applies=applies)

    with pytest.MonkeyPatch.context() as patch:
        for sample in samples:
            preferences = tuple(watched(p, sample.name) for p in original)
            patch.setattr(codes, "STATUS_PREFERENCES", preferences)
            # The reader swallows exceptions: a broken watch would go unseen but for this.
            assert not classify_message(sample.raw).reason.startswith("unreadable")
    return applied


def _score_without(
    samples: list[Sample],
    matched: dict[Switch, dict[Hashable, set[str]]],
    fitted: Callable[[set[str]], bool],
) -> Score:
    """The samples' score with every rule switched off whose matches ``fitted`` accepts."""
    with pytest.MonkeyPatch.context() as patch:
        for (module, name), rules in matched.items():
            kept = tuple(rule for rule in getattr(module, name) if not fitted(rules[rule]))
            patch.setattr(module, name, kept)
        return _score(samples)


def test_every_tuple_of_rules_is_switched_off_by_the_measurement() -> None:
    switched = {(module.__name__, name) for module, name, _ in TEXT_RULES}
    switched.add((codes.__name__, "STATUS_PREFERENCES"))
    rule_types = (Rule, reasons.Wording, StatusPreference)
    found = {
        (module.__name__, name)
        for info in pkgutil.iter_modules(parsing.__path__)
        for module in [importlib.import_module(f"{parsing.__name__}.{info.name}")]
        for name, value in vars(module).items()
        if isinstance(value, tuple) and value and isinstance(value[0], rule_types)
    }

    assert found <= switched, "rules that the LOFO and LOMO measurements cannot switch off"


# The three ways of scoring: with every rule; leaving one family out (rules that match only
# that family's messages are off while it is scored); leaving one message out (rules that
# match only that message are off while it is scored).
WAYS = ("plain", "lofo", "lomo")


@dataclass
class Measurement:
    families: dict[str, dict[str, Score]]  # family: {way: its score that way}
    tuned: dict[str, int]  # family: how many rules match only its messages
    single: int  # how many rules match exactly one message

    def overall(self, way: str) -> Score:
        total = Score()
        for scores in self.families.values():
            total.add(scores[way])
        return total

    def table(self) -> str:
        head = " kind   hard status reason"
        lines = [f"{'family':<22} {'msgs':>4} {'rcpt':>4} {head}  LOFO:{head}  LOMO:{head}  tuned"]
        for family, scores in sorted(self.families.items()):
            plain = scores["plain"]
            lines.append(
                f"{family:<22} {plain.messages:>4} {plain.recipients:>4} "
                + "       ".join(scores[way].cells() for way in WAYS)
                + f"  {self.tuned.get(family, 0):>5}"
            )
        totals = {way: self.overall(way) for way in WAYS}
        lines.append(
            f"{'overall':<22} {totals['plain'].messages:>4} {totals['plain'].recipients:>4} "
            + "       ".join(totals[way].cells() for way in WAYS)
            + f"  {sum(self.tuned.values()):>5}"
        )
        lines.append(f"rules that match exactly one message (off for LOMO): {self.single}")
        return "\n".join(lines)


@pytest.fixture(scope="module")
def measurement() -> Measurement:
    samples = _samples()
    by_family: dict[str, list[Sample]] = {}
    for sample in samples:
        by_family.setdefault(sample.family, []).append(sample)
    matched = _messages_matched(samples)
    matches = [names for rules in matched.values() for names in rules.values()]
    tuned: Counter[str] = Counter(
        next(iter(families))
        for families in ({_family(name) for name in names} for names in matches)
        if len(families) == 1
    )
    families = {}
    for family, members in by_family.items():
        lomo = Score()
        for sample in members:
            lomo.add(_score_without([sample], matched, lambda names, s=sample: names == {s.name}))
        families[family] = {
            "plain": _score(members),
            "lofo": _score_without(
                members, matched, lambda names, f=family: {_family(n) for n in names} == {f}
            ),
            "lomo": lomo,
        }
    single = sum(len(names) == 1 for names in matches)
    return Measurement(families, dict(tuned), single)


def test_the_figures_per_family_are_printed_so_they_can_be_quoted(
    measurement: Measurement, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print(f"\n{measurement.table()}")

    assert measurement.families


# Floors slightly below what the reader achieves, so that a regression fails.
FLOORS = {
    "plain": {"kind": 99.8, "hard": 98.1, "status": 95.7, "reason": 90.8},
    "lofo": {"kind": 99.6, "hard": 96.3, "status": 90.5, "reason": 81.5},
    "lomo": {"kind": 99.6, "hard": 96.5, "status": 93.9, "reason": 86.4},
}


@pytest.mark.parametrize("measure", MEASURES)
def test_it_reads_the_whole_corpus_right_above_its_floor(
    measurement: Measurement, measure: str
) -> None:
    score = measurement.overall("plain")

    assert score.percent(measure) >= FLOORS["plain"][measure], "\n".join(score.misses)


@pytest.mark.parametrize("measure", MEASURES)
def test_it_reads_each_family_without_its_own_rules_above_the_floor(
    measurement: Measurement, measure: str
) -> None:
    score = measurement.overall("lofo")

    assert score.percent(measure) >= FLOORS["lofo"][measure], "\n".join(score.misses)


@pytest.mark.parametrize("measure", MEASURES)
def test_it_reads_each_message_without_the_rules_only_it_matches_above_the_floor(
    measurement: Measurement, measure: str
) -> None:
    score = measurement.overall("lomo")

    assert score.percent(measure) >= FLOORS["lomo"][measure], "\n".join(score.misses)
