"""The sequence page's figures: per step, what its emails did and who is at it (set-based)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count

from automation.models import Enrolment, Sequence, Step

_EMAIL_FIGURES = """
    SELECT r.step_id,
        COUNT(*) FILTER (WHERE rel.delivery_status IN ('sent', 'bounced')),
        COUNT(*) FILTER (WHERE rel.human_opens > 0 OR rel.human_clicks > 0),
        COUNT(*) FILTER (WHERE rel.human_clicks > 0),
        COUNT(*) FILTER (WHERE rel.replied_at IS NOT NULL),
        COUNT(*) FILTER (WHERE rel.bounced_at IS NOT NULL),
        COUNT(*) FILTER (WHERE EXISTS (
            SELECT 1 FROM crm_emailevent ev
            WHERE ev.relation_id = rel.id AND ev.kind = 'unsubscribed'
        ))
    FROM automation_steprun r
    JOIN automation_step s ON s.id = r.step_id
    JOIN crm_emailmessagerelation rel ON rel.email_id = r.email_id AND rel.relation_type = 'to'
    WHERE s.sequence_id = %s
    GROUP BY r.step_id
"""


@dataclass
class StepFigures:
    step: Step
    sent: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0
    bounced: int = 0
    unsubscribed: int = 0
    tasks: int = 0
    # Enrolments at this step, by status (active, paused).
    at_step: dict[str, int] = field(default_factory=dict)

    @property
    def waiting_here(self) -> int:
        return sum(self.at_step.values())


def sequence_figures(*, sequence: Sequence) -> tuple[list[StepFigures], dict[str, int]]:
    """Each step's figures and the enrolments' counts by status: four queries in all."""
    steps = [StepFigures(step) for step in sequence.steps.select_related("template")]
    by_step = {figures.step.pk: figures for figures in steps}
    with connection.cursor() as cursor:
        cursor.execute(_EMAIL_FIGURES, [sequence.pk])
        for step_id, sent, opened, clicked, replied, bounced, unsubscribed in cursor.fetchall():
            figures = by_step[step_id]
            figures.sent, figures.opened, figures.clicked = sent, opened, clicked
            figures.replied, figures.bounced, figures.unsubscribed = replied, bounced, unsubscribed
    for step_id, count in (
        sequence.steps.filter(kind=Step.Kind.TASK).annotate(n=Count("runs")).values_list("pk", "n")
    ):
        by_step[step_id].tasks = count
    for step_id, status, count in (
        Enrolment.objects.running()
        .filter(sequence=sequence)
        .order_by()
        .values_list("current_step", "status")
        .annotate(n=Count("pk"))
        .values_list("current_step", "status", "n")
    ):
        if step_id in by_step:
            by_step[step_id].at_step[status] = count
    statuses = dict(
        Enrolment.objects.filter(sequence=sequence)
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return steps, statuses
