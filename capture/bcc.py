"""Mail to a user's capture address (their Bcc / forward address), handed over by inbound.

Inbound calls crm.hooks.mail_claimed for every message it receives (the IMAP mailbox,
`ingest_mail`, an ESP's inbound route); this module takes those addressed to a capture
address. A message from one of the user's own addresses is captured as their outgoing email,
with the same rules as their mailbox's (capture.storing). From anyone else it is refused: kept
by inbound as Unmatched with the reason, never attached to anyone's records.
"""

from __future__ import annotations

from collections.abc import Collection

from django.db.models import F

from capture.addresses import looks_like_capture_address, user_id_of
from capture.models import Mailbox
from capture.reading import Unreadable, mail_read
from capture.storing import Item, Rules, mails_capture
from crm.hooks import Claim
from crm.models import User


def bcc_mail_claim(*, to_addresses: Collection[str], from_address: str, raw: bytes) -> Claim | None:
    """Capture mail sent to a capture address; None when it names none."""
    named = [a for a in to_addresses if looks_like_capture_address(a)]
    if not named:
        return None
    user_ids = {user_id_of(a) for a in named} - {None}
    user = User.objects.filter(pk__in=user_ids, is_active=True).first() if user_ids else None
    if user is None:
        return Claim(f"capture address {named[0]} names no user: refused", refused=True)
    mailbox = Mailbox.objects.filter(user=user).first()
    rules = Rules.for_user(user, mailbox)
    if from_address.lower() not in rules.own:
        return Claim(
            f"capture address of {user.get_username()}: sender {from_address or '(none)'} is "
            "not one of their addresses: refused",
            refused=True,
        )
    mail = mail_read(raw)
    if isinstance(mail, Unreadable):
        return Claim(f"capture address of {user.get_username()}: {mail.reason}", refused=True)
    item = Item(mail=mail, raw=raw, outgoing=True)
    others = [a for a in rules.others(mail) if not looks_like_capture_address(a)]
    if not others and mail.forwarded:
        # Forwarded "as attachment" to the address: the message inside is the one to capture,
        # received or sent by the user as its own From says.
        inner = mail_read(mail.forwarded)
        if not isinstance(inner, Unreadable):
            outgoing = inner.from_address in rules.own
            item = Item(mail=inner, raw=mail.forwarded, outgoing=outgoing)
    result = mails_capture(user=user, items=[item], rules=rules)
    if mailbox is not None and result.captured:
        Mailbox.objects.filter(pk=mailbox.pk).update(
            messages_captured=F("messages_captured") + result.captured
        )
    if result.captured:
        email_id = result.email_ids[0] if result.email_ids else None
        return Claim(f"captured for {user.get_username()} (Bcc)", email_id=email_id)
    why = ", ".join(result.skipped) or "nothing to capture"
    return Claim(f"capture address of {user.get_username()}: not captured ({why})")
