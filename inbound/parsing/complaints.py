"""Complaints: RFC 5965 ARF reports and the few providers that send something else."""

from __future__ import annotations

import re
from email.message import Message

from inbound.parsing.message import Mail, clean_address, header, header_addresses, header_all
from inbound.parsing.results import FailedRecipient


def find_complaint(mail: Mail) -> tuple[str, tuple[FailedRecipient, ...]] | None:
    """The feedback type and the recipients who complained, or None if this is no complaint."""
    fields_text = mail.feedback_text
    report_type = (mail.msg.get_param("report-type") or "") if mail.msg.is_multipart() else ""
    if not fields_text and str(report_type).lower() == "feedback-report":
        fields_text = mail.full_text
    if fields_text and re.search(r"(?im)^Feedback-Type:", fields_text):
        return _arf_complaint(mail, fields_text)

    if mail.ses is not None and mail.ses.get("notificationType") == "Complaint":
        complaint = mail.ses.get("complaint") or {}
        addresses = [
            str(r.get("emailAddress", "")) for r in complaint.get("complainedRecipients") or []
        ]
        return str(complaint.get("complaintFeedbackType") or "abuse"), _feedback(addresses)

    # Microsoft's JMRP (Outlook.com, Hotmail) forwards the message with a fixed subject.
    if re.match(r"(?i)complaint about message from\b", mail.subject):
        original = mail.original
        address = header(original, "X-HmXmrOriginalRecipient") if original else ""
        return "abuse", _feedback([address or _first_address(original, "To")])

    # Apple Mail's one-click unsubscribe answers a List-Unsubscribe mailto: URL.
    if header(mail.msg, "X-Apple-Unsubscribe").lower() == "true":
        return "opt-out", _feedback([mail.from_address])
    return None


def _arf_complaint(mail: Mail, text: str) -> tuple[str, tuple[FailedRecipient, ...]]:
    feedback_type = ""
    addresses: list[str] = []
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "feedback-type" and not feedback_type:
            feedback_type = value.strip().lower()
        elif name in ("original-rcpt-to", "removal-recipient"):
            addresses.append(value.strip())
    if not addresses:
        addresses.append(_first_address(mail.original, "To"))
    return feedback_type or "abuse", _feedback(addresses)


def _first_address(msg: Message | None, name: str) -> str:
    if msg is None:
        return ""
    found = header_addresses(header_all(msg, name))
    return found[0] if found else ""


def _feedback(addresses: list[str]) -> tuple[FailedRecipient, ...]:
    return tuple(
        FailedRecipient(
            address=clean_address(a),
            status="",
            reply_code="",
            diagnostic="",
            hard=False,
            reason="feedback",
        )
        for a in addresses or [""]
    )
