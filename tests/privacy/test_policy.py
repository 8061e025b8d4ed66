"""The email privacy policy, rule by rule."""

import pytest

from privacy.models import Individual
from privacy.policy import email_policy


def _policy(individual=None, *, opted_out=False, list_email=False, enforce=True):
    return email_policy(
        individual,
        has_opted_out_of_email=opted_out,
        is_list_email=list_email,
        enforce_privacy=enforce,
    )


def test_a_person_without_preferences_gets_tracked_email() -> None:
    policy = _policy()

    assert (policy.may_send, policy.may_track) == (True, True)


@pytest.mark.parametrize(
    "flag,reason",
    [("has_opted_out_processing", "Don't Process"), ("should_forget", "Forget this Individual")],
)
def test_dont_process_and_forget_mean_no_email_at_all(flag, reason) -> None:
    policy = _policy(Individual(**{flag: True}))

    assert (policy.may_send, policy.reason) == (False, reason)


def test_dont_track_sends_an_untracked_copy() -> None:
    policy = _policy(Individual(has_opted_out_tracking=True))

    assert (policy.may_send, policy.may_track, policy.reason) == (True, False, "Don't Track")


@pytest.mark.parametrize("list_email,may_send", [(True, False), (False, True)])
def test_email_opt_out_blocks_list_email_but_not_a_reps_single_email(list_email, may_send) -> None:
    assert _policy(opted_out=True, list_email=list_email).may_send is may_send


def test_email_opt_out_binds_even_when_privacy_is_not_enforced() -> None:
    assert not _policy(opted_out=True, list_email=True, enforce=False).may_send


@pytest.mark.parametrize("list_email,may_send", [(True, False), (False, True)])
def test_dont_market_blocks_list_email_only(list_email, may_send) -> None:
    policy = _policy(Individual(has_opted_out_solicit=True), list_email=list_email)

    assert policy.may_send is may_send


def test_individual_flags_are_ignored_when_the_org_does_not_enforce_them() -> None:
    individual = Individual(has_opted_out_processing=True, has_opted_out_tracking=True)

    policy = _policy(individual, enforce=False)

    assert (policy.may_send, policy.may_track) == (True, True)
