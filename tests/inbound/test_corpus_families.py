"""The bounce reader per mail system, as a stranger would measure it.

The corpus messages are grouped by the mail system that produced them (the file name's prefix:
``lhost-postfix``, ``rfc3464``, ``arf``, ``is-not-bounce``, ...). A hand-written wording that
matches the messages of only one family was in effect tuned on that family, so each family is
also measured with such wordings switched off ("leave one family out", LOFO): that figure is
what to expect from a mail system the rules were never shown.
"""

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from inbound.parsing import ParsedMessage, classify_message, reasons
from inbound.parsing.message import parse

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


def _families_matched(samples: list[Sample]) -> dict[reasons.Wording, set[str]]:
    texts = [(s.family, parse(s.raw)) for s in samples]
    return {
        wording: {
            family
            for family, mail in texts
            if wording.pattern.search(mail.full_text) or wording.pattern.search(mail.dsn_text)
        }
        for wording in reasons.WORDINGS
    }


@dataclass
class Measurement:
    families: dict[str, tuple[Score, Score]]  # family: (with every wording, leave-one-out)
    tuned: dict[str, int]  # family: how many wordings match only its messages

    def overall(self, lofo: bool) -> Score:
        total = Score()
        for plain, left_out in self.families.values():
            total.add(left_out if lofo else plain)
        return total

    def table(self) -> str:
        head = "kind   hard  status reason"
        lines = [f"{'family':<22} {'msgs':>4} {'rcpt':>4}  {head}   LOFO: {head}  tuned"]
        for family, (plain, left_out) in sorted(self.families.items()):
            lines.append(
                f"{family:<22} {plain.messages:>4} {plain.recipients:>4}  {plain.cells()}"
                f"         {left_out.cells()}  {self.tuned.get(family, 0):>5}"
            )
        plain, left_out = self.overall(lofo=False), self.overall(lofo=True)
        lines.append(
            f"{'overall':<22} {plain.messages:>4} {plain.recipients:>4}  {plain.cells()}"
            f"         {left_out.cells()}  {sum(self.tuned.values()):>5}"
        )
        return "\n".join(lines)


@pytest.fixture(scope="module")
def measurement() -> Measurement:
    samples = _samples()
    by_family: dict[str, list[Sample]] = {}
    for sample in samples:
        by_family.setdefault(sample.family, []).append(sample)
    matched = _families_matched(samples)
    tuned: Counter[str] = Counter(next(iter(f)) for f in matched.values() if len(f) == 1)
    families = {}
    with pytest.MonkeyPatch.context() as patch:
        for family, members in by_family.items():
            plain = _score(members)
            kept = tuple(w for w in reasons.WORDINGS if matched[w] != {family})
            patch.setattr(reasons, "WORDINGS", kept)
            left_out = _score(members)
            patch.undo()
            families[family] = (plain, left_out)
    return Measurement(families, dict(tuned))


def test_the_figures_per_family_are_printed_so_they_can_be_quoted(
    measurement: Measurement, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print(f"\n{measurement.table()}")

    assert measurement.families


# Floors slightly below what the reader achieves, so that a regression fails.
FLOORS = {"kind": 99.5, "hard": 97.0, "status": 95.0, "reason": 89.0}
LOFO_FLOORS = {"kind": 99.5, "hard": 95.5, "status": 92.0, "reason": 81.5}


@pytest.mark.parametrize("measure", MEASURES)
def test_it_reads_the_whole_corpus_right_above_its_floor(
    measurement: Measurement, measure: str
) -> None:
    score = measurement.overall(lofo=False)

    assert score.percent(measure) >= FLOORS[measure], "\n".join(score.misses)


@pytest.mark.parametrize("measure", MEASURES)
def test_it_reads_each_family_without_its_own_wordings_above_the_floor(
    measurement: Measurement, measure: str
) -> None:
    score = measurement.overall(lofo=True)

    assert score.percent(measure) >= LOFO_FLOORS[measure], "\n".join(score.misses)
