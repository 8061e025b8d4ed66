"""The privacy policy: may we email this person, and may we track what they do with it?

One function answers for every send (a rep's single email, list email, automations), so the rules
live in one place. It reads the person's flags and the org's switch; it looks nothing up.
"""

from dataclasses import dataclass

from privacy.models import Individual


@dataclass(frozen=True)
class EmailPolicy:
    may_send: bool
    may_track: bool
    reason: str = ""  # why the send is refused, or why the copy goes untracked

    @classmethod
    def refuse(cls, reason: str) -> "EmailPolicy":
        return cls(may_send=False, may_track=False, reason=reason)


ALLOWED = EmailPolicy(may_send=True, may_track=True)


def email_policy(
    individual: Individual | None,
    *,
    has_opted_out_of_email: bool,
    is_list_email: bool,
    enforce_privacy: bool,
) -> EmailPolicy:
    """Decide whether one recipient may get an email, and whether their copy may be tracked."""
    # The Individual's flags only bind when the org enforces them, as in Salesforce's
    # "Enforce email privacy settings"; Email Opt Out is the person's own field and always binds.
    flags = individual if enforce_privacy else None
    if flags is not None and flags.should_forget:
        return EmailPolicy.refuse("Forget this Individual")
    if flags is not None and flags.has_opted_out_processing:
        return EmailPolicy.refuse("Don't Process")
    if is_list_email and has_opted_out_of_email:
        return EmailPolicy.refuse("Email Opt Out")
    if is_list_email and flags is not None and flags.has_opted_out_solicit:
        return EmailPolicy.refuse("Don't Market")
    if flags is not None and flags.has_opted_out_tracking:
        return EmailPolicy(may_send=True, may_track=False, reason="Don't Track")
    return ALLOWED
