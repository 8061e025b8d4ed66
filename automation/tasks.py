"""Celery tasks of automation: thin, each calls one service (beat runs them)."""

from __future__ import annotations

from celery import shared_task

from automation.advance import enrolments_advance, enrolments_stops_detect, undelivered_deliver
from automation.triggers import rules_fire


@shared_task(ignore_result=True)
def advance_enrolments() -> int:
    """Run every due sequence step (a batch per transaction; runs at once never clash)."""
    return enrolments_advance()


@shared_task(ignore_result=True)
def sweep_enrolments() -> int:
    """Stop enrolments that must stop (replies, bounces, opt-outs...) and deliver any copies a
    dead worker left Pending."""
    stopped = enrolments_stops_detect()
    undelivered_deliver()
    return stopped


@shared_task(ignore_result=True)
def fire_rules() -> int:
    """Fire the triggered-email rules for the events since their last run (each event once)."""
    return rules_fire()
