"""The Unmatched queue: a bounce or complaint with no proof that it answers our email, applied
on an admin's word (the Django admin's "apply"), once, recording who applied it and when."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from crm.models import EmailMessageRelation, EmailSuppression, User
from crm.suppression import address_suppress
from inbound.effects import bounce_record, complaint_record
from inbound.models import APPLICABLE_KINDS, InboundMessage
from privacy.forgotten import forgotten_among


class ApplyRefused(Exception):
    """The message was applied already, or reports nothing that can be applied."""


def inbound_message_apply(*, message_id: int, by: User) -> InboundMessage:
    """Apply what an Unmatched bounce or complaint reports, as if it had proved its copy: each
    address it names is taken to answer the latest copy sent to it."""
    now = timezone.now()
    with transaction.atomic():
        # The claim: of two admins (or two clicks), one changes the row, the other is refused.
        claimed = InboundMessage.objects.filter(
            pk=message_id,
            status=InboundMessage.Status.UNMATCHED,
            applied_at__isnull=True,
            kind__in=APPLICABLE_KINDS,
        ).update(status=InboundMessage.Status.PROCESSED, applied_at=now, applied_by=by)
        if not claimed:
            raise ApplyRefused(
                "It was applied already, or is not an Unmatched bounce or complaint."
            )
        message = InboundMessage.objects.get(pk=message_id)
        named = _named(message)
        if forgotten_among(entry["address"] for entry in named):
            # Kept from before the person was forgotten: applying it would write their address
            # back (a suppression, a complaint), which the forget removed.
            raise ApplyRefused(
                "It names a forgotten person's address: nothing of it can be applied."
            )  # rolls the claim back
        notes = [_apply_one(message, entry, by=by) for entry in named]
        if not notes:
            raise ApplyRefused("It names no address to apply it to.")  # rolls the claim back
        message.note = f"applied by {by.get_username()}: {'; '.join(notes)}"[:255]
        message.save(update_fields=["note"])
    return message


def _named(message: InboundMessage) -> list[dict]:
    """Each address the report names, once."""
    seen: dict[str, dict] = {}
    for entry in message.report.get("recipients") or []:
        address = str(entry.get("address") or "").strip().lower()
        if address and len(address) <= 254 and address not in seen:
            seen[address] = {**entry, "address": address}
    return list(seen.values())


def _apply_one(message: InboundMessage, entry: dict, *, by: User) -> str:
    address = entry["address"]
    copy = (
        EmailMessageRelation.objects.select_related("contact", "lead")
        .filter(address__iexact=address)
        .exclude(relation_type=EmailMessageRelation.Type.FROM)
        .order_by("-pk")
        .first()
    )
    if message.kind == "complaint":
        feedback_type = str(message.report.get("feedback_type") or "abuse")
        complaint_record(relation=copy, address=address, feedback_type=feedback_type, by=by)
        return f"complaint from {address}"
    hard, status = bool(entry.get("hard")), str(entry.get("status") or "")
    diagnostic = str(entry.get("diagnostic") or "")
    if copy is not None:
        suppressed = bounce_record(
            relation=copy, hard=hard, status=status, diagnostic=diagnostic, when=timezone.now()
        )
    elif hard:  # no copy to mark, but the address is dead all the same
        address_suppress(
            address=address,
            reason=EmailSuppression.Reason.HARD_BOUNCE,
            detail=f"Hard bounce {status}: {diagnostic}".strip(),
            when=timezone.now(),
        )
        suppressed = True
    else:
        suppressed = False
    kind = "hard" if hard else "soft"
    return f"{kind} bounce {address}{' (suppressed)' if suppressed else ''}"
