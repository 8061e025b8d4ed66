from collections.abc import Callable
from datetime import time
from typing import Any

import pytest

from automation.models import Sequence, Step
from crm.models import EmailTemplate, OrgSettings, User


@pytest.fixture(autouse=True)
def _sending_on(db: None) -> None:
    org = OrgSettings.load()
    org.daily_single_email_limit = 10_000
    org.save()


@pytest.fixture
def make_template(db: None) -> Callable[..., EmailTemplate]:
    counter = iter(range(1, 10_000))

    def make(**overrides: Any) -> EmailTemplate:
        fields = {
            "name": f"Template {next(counter)}",
            "subject": "Hello {{first_name}}",
            "html_body": '<p>Hi {{first_name}}, see <a href="https://example.com/x">this</a>.</p>',
        }
        return EmailTemplate.objects.create(**{**fields, **overrides})

    return make


@pytest.fixture
def make_sequence(
    manager: User, make_template: Callable[..., EmailTemplate]
) -> Callable[..., Sequence]:
    """A sequence from a short spec: "email", "reply", ("wait", days), ("at", weekday, "HH:MM"),
    ("task", "call")."""

    def make(*spec: Any, **overrides: Any) -> Sequence:
        sequence = Sequence.objects.create(**{"name": "Outreach", "owner": manager, **overrides})
        for position, item in enumerate(spec or ("email",), start=1):
            kind = item if isinstance(item, str) else item[0]
            step = Step(sequence=sequence, position=position)
            if kind in ("email", "reply"):
                step.kind = Step.Kind.EMAIL
                step.template = make_template()
                step.thread = Step.Thread.REPLY if kind == "reply" else Step.Thread.NEW
            elif kind == "wait":
                step.kind, step.wait_kind = Step.Kind.WAIT, Step.WaitKind.BUSINESS_DAYS
                step.wait_days = item[1]
            elif kind == "at":
                step.kind, step.wait_kind = Step.Kind.WAIT, Step.WaitKind.WEEKDAY_TIME
                step.wait_weekday = item[1]
                step.wait_time = time.fromisoformat(item[2])
            else:
                step.kind, step.task_kind = Step.Kind.TASK, item[1]
                step.task_subject = "Follow up"
            step.save()
        return sequence

    return make
