"""The email page: each recipient's status, bounces, opens and clicks, the conversation it
belongs to, and the body shown safely; with ?compose=reply|reply_all|forward, the composer
answering it (crm.views.compose)."""

from collections import Counter, defaultdict
from typing import Any

from django.contrib.auth.decorators import permission_required
from django.core.paginator import Page, Paginator
from django.db.models import Count, Q
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from crm.models import Contact, EmailMessage, EmailMessageRelation, Lead, User
from crm.partitions import events_since
from crm.privacy_flags import DontTrack, dont_track_of
from crm.views import compose
from crm.views.access import current_user, visible_pks
from mailkit.display import safe_email_html
from tracking.models import TrackingEvent

LABELS = dict(TrackingEvent.Label.choices)
# The conversation is listed a page at a time, opening on the page that holds this email.
THREAD_PAGE_SIZE = 20
# Replies linked from the email's status; the conversation lists them all.
REPLIES_SHOWN = 5


def _get_email_for_user(request: HttpRequest, pk: int) -> EmailMessage:
    """The email if the user sent it, owns a recipient's record, or sees every record; else 404."""
    emails = EmailMessage.objects.visible_to(request.user).select_related("sender")
    return get_object_or_404(emails, pk=pk)


@permission_required("crm.view_emailmessage", raise_exception=True)
def email_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An email with each recipient's HTML Email Status: delivery, opens, machine opens, clicks."""
    mode = request.GET.get("compose", "")
    if mode in compose.REPLY_MODES:
        return compose.email_reply(request, pk, mode)
    email = _get_email_for_user(request, pk)
    recipients = list(
        email.relations.exclude(relation_type=EmailMessageRelation.Type.FROM).select_related(
            "contact", "lead"
        )
    )
    user = current_user(request)
    thread = _thread_page(request, email, user)
    replies: list[EmailMessage] = []
    if email.status == EmailMessage.Status.REPLIED:
        if thread is not None and not thread.has_other_pages():
            # The whole conversation is at hand: no query for the replies.
            replies = [
                e for e in thread if e.reply_to_message_id == email.pk and not e.is_auto_reply
            ][: REPLIES_SHOWN + 1]
        else:
            replies = list(
                EmailMessage.objects.visible_to(user)
                .filter(reply_to_message=email, is_auto_reply=False)
                .order_by(Coalesce("message_date", "created_at"), "pk")[: REPLIES_SHOWN + 1]
            )
    # A recipient's record is named and linked only for a user who may see it.
    contacts = visible_pks(user, Contact, (r.contact_id for r in recipients))
    leads = visible_pks(user, Lead, (r.lead_id for r in recipients))
    # Don't Track turned on since the send, said only of a record the user may see.
    dont_track = dont_track_of(
        [r.contact for r in recipients if r.contact_id in contacts and r.contact is not None]
        + [r.lead for r in recipients if r.lead_id in leads and r.lead is not None]
    )
    links = list(email.tracked_links.all())
    # From the send on (with a margin for clocks): on PostgreSQL only the months since then.
    events = TrackingEvent.objects.filter(
        relation__email=email, occurred_at__gte=events_since(email.message_date, email.created_at)
    )
    # Internal events (Setup's own addresses and IP ranges) are listed, and counted apart.
    counted = events.filter(internal=False)
    machine_opens: dict[int, list[tuple[str, int]]] = defaultdict(list)
    internal: Counter[int] = Counter()
    for row in (
        events.filter(
            Q(internal=True) | Q(kind=TrackingEvent.Kind.OPEN) & ~Q(label=TrackingEvent.Label.HUMAN)
        )
        .values("relation_id", "label", "internal")
        .annotate(n=Count("pk"))
        .order_by("relation_id", "label")
    ):
        if row["internal"]:
            internal[row["relation_id"]] += row["n"]
        else:
            machine_opens[row["relation_id"]].append((LABELS[row["label"]], row["n"]))
    clicks: dict[int, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for row in (
        counted.filter(kind=TrackingEvent.Kind.CLICK)
        .values("relation_id", "link_id")
        .annotate(
            human=Count("pk", filter=Q(label=TrackingEvent.Label.HUMAN)),
            machine=Count("pk", filter=~Q(label=TrackingEvent.Label.HUMAN)),
        )
        .order_by()
    ):
        clicks[row["relation_id"]][row["link_id"]] = {
            "human": row["human"],
            "machine": row["machine"],
        }
    rows: list[dict[str, Any]] = [
        {
            "relation": relation,
            "record": (
                relation.contact
                if relation.contact_id in contacts
                else relation.lead
                if relation.lead_id in leads
                else None
            ),
            # The stored name came from the record: shown only with it, or with no record.
            "name": relation.name if not (relation.contact_id or relation.lead_id) else "",
            "machine_opens": machine_opens.get(relation.pk, []),
            "internal": internal.get(relation.pk, 0),
            "dont_track": _dont_track_note(relation, dont_track),
            "links": [
                (link, clicks[relation.pk][link.pk])
                for link in links
                if link.pk in clicks.get(relation.pk, {})
            ],
        }
        for relation in recipients
    ]
    context = {
        "email": email,
        "body": safe_email_html(email.html_body),
        "rows": rows,
        "links": [link for link in links if not link.is_honeypot],
        "honeypot": next((link for link in links if link.is_honeypot), None),
        "history": events.select_related("relation", "link").order_by("-occurred_at", "-pk")[:50],
        "in_progress": email.delivery_status
        in (EmailMessage.Delivery.QUEUED, EmailMessage.Delivery.SENDING),
        "replies": replies[:REPLIES_SHOWN],
        "more_replies": len(replies) > REPLIES_SHOWN,
        "thread": thread,
    }
    return render(request, "tracking/email_detail.html", context)


def _dont_track_note(
    relation: EmailMessageRelation, dont_track: dict[tuple[str, int], DontTrack]
) -> str:
    """What became of this copy's opens and clicks since its person turned Don't Track on."""
    if relation.contact_id:
        found = dont_track.get(("contact", relation.contact_id))
    else:
        found = dont_track.get(("lead", relation.lead_id or 0))
    if found is None or not relation.is_tracked or not found.covers(relation.sent_at):
        return ""
    return found.note


def _thread_page(request: HttpRequest, email: EmailMessage, user: User) -> Page | None:
    """The page of the email's conversation (same thread, visible to the user, oldest first)
    that `?thread_page=` asks for, else the one holding this email; None when it is alone."""
    if not email.thread_identifier:
        return None
    when = Coalesce("message_date", "created_at")
    thread = (
        EmailMessage.objects.visible_to(user)
        .filter(thread_identifier=email.thread_identifier)
        .annotate(when=when)
        .order_by("when", "pk")
        .only(
            "subject",
            "from_name",
            "from_address",
            "incoming",
            "status",
            "is_auto_reply",
            "message_date",
            "reply_to_message_id",
        )
    )
    asked = request.GET.get("thread_page")
    if asked is None:
        # Most conversations fit one page: one query, no count.
        first = list(thread[: THREAD_PAGE_SIZE + 1])
        if len(first) < 2:
            return None
        if len(first) <= THREAD_PAGE_SIZE:
            return Paginator(first, THREAD_PAGE_SIZE).page(1)
        mine = email.message_date or email.created_at
        earlier = thread.filter(Q(when__lt=mine) | Q(when=mine, pk__lt=email.pk)).count()
        asked = str(earlier // THREAD_PAGE_SIZE + 1)
    paginator = Paginator(thread, THREAD_PAGE_SIZE)
    return paginator.get_page(asked) if paginator.count > 1 else None


@permission_required("crm.view_emailmessage", raise_exception=True)
def relation_activity(request: HttpRequest, pk: int) -> HttpResponse:
    """One recipient's opens and clicks, for the timeline entry that is opened."""
    relation = get_object_or_404(
        EmailMessageRelation.objects.filter(
            email__in=EmailMessage.objects.visible_to(request.user)
        ).select_related("email"),
        pk=pk,
    )
    events = relation.tracking_events.select_related("link")
    clicks = (
        events.filter(kind=TrackingEvent.Kind.CLICK, link__is_honeypot=False, internal=False)
        .values("link__url")
        .annotate(
            human=Count("pk", filter=Q(label=TrackingEvent.Label.HUMAN)),
            machine=Count("pk", filter=~Q(label=TrackingEvent.Label.HUMAN)),
        )
        .order_by("-human", "link__url")
    )
    context = {
        "relation": relation,
        "clicks": list(clicks),
        "history": list(events.order_by("-occurred_at", "-pk")[:20]),
    }
    return render(request, "tracking/relation_activity.html", context)
