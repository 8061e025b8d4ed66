"""The inbound classifier against the labelled real-world messages in shared/corpus/bounces."""

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from inbound.parsing import ParsedMessage, classify_message

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "bounces"
FIELDS = ("hard", "status", "reply_code", "reason")

if not (CORPUS / "labels.jsonl").is_file():
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"bounce corpus missing at {CORPUS} (REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(f"bounce corpus missing at {CORPUS}", allow_module_level=True)


@dataclass
class Agreement:
    """How often the classifier agrees with the labels, with the misses to show."""

    recipients: int = 0
    right: Counter[str] = field(default_factory=Counter)
    misses: dict[str, list[str]] = field(default_factory=dict)
    complaints: int = 0
    complaints_right: int = 0
    auto_replies: int = 0
    auto_replies_right: int = 0
    ordinary: int = 0
    ordinary_as_bounce: list[str] = field(default_factory=list)

    def percent(self, name: str) -> float:
        return 100 * self.right[name] / self.recipients

    def miss(self, name: str, text: str) -> None:
        self.misses.setdefault(name, []).append(text)

    def summary(self) -> str:
        lines = [f"inbound corpus: {self.recipients} failed recipients"]
        lines += [
            f"  {name:<11} {self.right[name]:>4}/{self.recipients} = {self.percent(name):5.1f}%"
            for name in FIELDS
        ]
        lines.append(f"  complaints   {self.complaints_right}/{self.complaints}")
        lines.append(f"  auto-replies {self.auto_replies_right}/{self.auto_replies}")
        lines.append(f"  ordinary messages taken for bounces: {len(self.ordinary_as_bounce)}")
        return "\n".join(lines)

    def report(self, name: str) -> str:
        return f"{self.summary()}\nmisses ({name}):\n  " + "\n  ".join(self.misses.get(name, []))


@pytest.fixture(scope="module")
def agreement() -> Agreement:
    result = Agreement()
    for line in (CORPUS / "labels.jsonl").read_text().splitlines():
        label = json.loads(line)
        name = label["file"]
        message = classify_message((CORPUS / name).read_bytes())
        expected = label["recipients"]
        if not expected:
            result.ordinary += 1
            if message.kind == "bounce":
                result.ordinary_as_bounce.append(name)
        elif expected[0]["reason"] == "feedback":
            result.complaints += 1
            if (
                message.kind == "complaint"
                and message.feedback_type == expected[0]["feedback_type"]
            ):
                result.complaints_right += 1
            else:
                result.miss("complaint", f"{name}: {message.kind} {message.feedback_type!r}")
        elif expected[0]["reason"] == "vacation":
            result.auto_replies += 1
            if message.kind == "auto_reply":
                result.auto_replies_right += 1
            else:
                result.miss("auto_reply", f"{name}: {message.kind}")
        else:
            _compare_recipients(result, name, message, expected)
    return result


def _compare_recipients(
    result: Agreement, name: str, message: ParsedMessage, expected: list[dict[str, object]]
) -> None:
    # Position i against label i: a recipient the classifier did not report is wrong.
    for index, wanted in enumerate(expected):
        result.recipients += 1
        got = message.recipients[index] if index < len(message.recipients) else None
        for key in FIELDS:
            value = getattr(got, key) if got is not None else None
            if value == wanted[key]:
                result.right[key] += 1
            else:
                result.miss(key, f"{name}[{index}]: got {value!r}, want {wanted[key]!r}")


def test_the_agreement_is_printed_so_it_can_be_quoted(
    agreement: Agreement, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print(f"\n{agreement.summary()}")

    assert agreement.recipients > 0


def test_it_tells_hard_from_soft_for_97_percent_of_failed_recipients(
    agreement: Agreement,
) -> None:
    assert agreement.percent("hard") >= 97, agreement.report("hard")


def test_it_finds_the_exact_status_code_for_95_percent_of_failed_recipients(
    agreement: Agreement,
) -> None:
    assert agreement.percent("status") >= 95, agreement.report("status")


def test_it_recognises_every_complaint_with_its_feedback_type(agreement: Agreement) -> None:
    assert agreement.complaints_right == agreement.complaints, agreement.report("complaint")


def test_it_recognises_every_auto_reply(agreement: Agreement) -> None:
    assert agreement.auto_replies_right == agreement.auto_replies, agreement.report("auto_reply")


def test_it_takes_no_ordinary_message_for_a_bounce(agreement: Agreement) -> None:
    assert agreement.ordinary > 0
    assert agreement.ordinary_as_bounce == [], agreement.summary()
