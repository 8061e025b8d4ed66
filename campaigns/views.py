"""The campaign pages: list, detail, members, statuses, list email, report, influence, and
the recipient's unsubscribe page."""

import re
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required, permission_required
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    QueryDict,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from django_filters.views import FilterView

from campaigns import filters, forms, tables
from campaigns.figures import campaign_engagement, campaign_figures, funnel_from_counts, link_clicks
from campaigns.influence import influence_report
from campaigns.list_email import (
    list_email_cancel,
    list_email_create,
    list_email_progress,
    list_email_reschedule,
)
from campaigns.members import (
    member_statuses_save,
    members_add,
    members_remove,
    members_status_set,
)
from campaigns.models import (
    Campaign,
    CampaignMember,
    InfluenceModel,
    ListEmail,
)
from crm import filters as crm_filters
from crm.delivery import UNCONFIRMED
from crm.listing import BoundedTableMixin, filter_query, ids_from, table_configure
from crm.models import Contact, EmailMessage, EmailMessageRelation, Lead, User
from crm.privacy_changes import unsubscribe_record
from crm.privacy_flags import DONT_PROFILE, row_person_flagged
from crm.scheduling import user_zone
from crm.sending import SendRefused, email_send, merge_values
from crm.tokens import relation_for_token
from crm.views.compose import editable_templates
from mailkit import merge
from mailkit.display import editable_html, safe_email_html
from mailkit.rewrite import rewrite_html
from mailkit.tokens import Purpose

Relation = EmailMessageRelation
PEOPLE: dict[str, tuple[type[Contact] | type[Lead], Any]] = {
    "contact": (Contact, crm_filters.ContactFilter),
    "lead": (Lead, crm_filters.LeadFilter),
}


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _get_campaign_for_user(request: HttpRequest, pk: int, *, edit: bool = False) -> Campaign:
    """The campaign if this user may see it (and edit it, when asked); 403 / 404 otherwise."""
    user = _user(request)
    if not user.has_perm("campaigns.view_campaign"):
        raise PermissionDenied
    campaign = get_object_or_404(Campaign.objects.select_related("owner", "parent"), pk=pk)
    if edit and not campaign.editable_by(user):
        raise PermissionDenied
    return campaign


class CampaignListView(PermissionRequiredMixin, BoundedTableMixin, FilterView):
    model = Campaign
    table_class = tables.CampaignTable
    filterset_class = filters.CampaignFilter
    permission_required = "campaigns.view_campaign"
    raise_exception = True
    template_name = "campaigns/campaign_list.html"

    def get_queryset(self) -> QuerySet[Campaign]:
        return Campaign.objects.select_related("owner", "parent").annotate(
            members_count=Count("members"),
            responses_count=Count("members", filter=Q(members__has_responded=True)),
        )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["can_create"] = self.request.user.has_perm("campaigns.add_campaign")
        context["is_filtered"] = bool(filter_query(self.request))
        return context


@permission_required("campaigns.add_campaign", raise_exception=True)
def campaign_create(request: HttpRequest) -> HttpResponse:
    return _edit_campaign(request, None)


def campaign_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _edit_campaign(request, _get_campaign_for_user(request, pk, edit=True))


def _edit_campaign(request: HttpRequest, campaign: Campaign | None) -> HttpResponse:
    form = forms.CampaignForm(request.POST or None, instance=campaign, user=_user(request))
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        messages.success(request, f"Campaign “{saved}” saved.")
        return redirect(saved)
    if request.method == "POST":
        messages.error(request, "Please correct the errors below; nothing was saved.")
    context = {
        "form": form,
        "title": f"Edit {campaign}" if campaign else "New campaign",
        "cancel_url": campaign.get_absolute_url() if campaign else reverse("campaigns:list"),
    }
    return render(request, "crm/record_form.html", context)


def _people_seen_by(user: User) -> Q:
    """Members (or recipients) whose Contact or Lead this user may see: a campaign's figures
    count everyone, its lists name only the people the user's record access shows."""
    if user.has_perm("crm.view_all_records"):
        return Q()
    return Q(contact__owner=user) | Q(lead__owner=user)


def _members_with_engagement(campaign: Campaign) -> QuerySet[CampaignMember]:
    """The members, each with their totals over the campaign's emails (subqueries, one query)."""
    copies = Relation.objects.filter(
        email__campaign=campaign, relation_type__in=["to", "cc", "bcc"]
    ).filter(Q(contact_id=OuterRef("contact_id")) | Q(lead_id=OuterRef("lead_id")))

    def total(expression: Any) -> Coalesce:
        query = copies.order_by().values("email__campaign").annotate(n=expression).values("n")
        return Coalesce(Subquery(query, output_field=IntegerField()), 0)

    return campaign.members.select_related("contact", "lead", "status").annotate(
        emails_sent=total(Count("pk", filter=Q(delivery_status="sent"))),
        human_opens=_unprofiled(total(Sum("human_opens"))),
        machine_opens=_unprofiled(total(Sum("machine_opens"))),
        human_clicks=_unprofiled(total(Sum("human_clicks"))),
    )


def _unprofiled(expression: Any) -> Case:
    """A member's engagement, or nothing for a Don't Profile person: the campaign's figures
    still count them, the list of people does not show them."""
    return Case(
        When(row_person_flagged(DONT_PROFILE), then=Value(None)),
        default=expression,
        output_field=IntegerField(),
    )


def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _get_campaign_for_user(request, pk)
    members = _members_with_engagement(campaign).filter(_people_seen_by(_user(request)))
    member_filter = filters.MemberFilter(request.GET or None, queryset=members, campaign=campaign)
    table = table_configure(request, tables.MemberTable(member_filter.qs))
    own, hierarchy = campaign_figures(campaign=campaign)
    editable = campaign.editable_by(_user(request))
    if not editable:
        table.exclude = ("select",)
    query = filter_query(request)
    context = {
        "campaign": campaign,
        "own": own,
        "hierarchy": hierarchy,
        "children": campaign.children.order_by("name"),
        "has_children": campaign.children.exists(),
        "table": table,
        "filter": member_filter,
        "is_filtered": bool(query),
        "member_query": query,
        "statuses": campaign.statuses.all(),
        "list_emails": campaign.list_emails.select_related("sender")[:10],
        "editable": editable,
    }
    return render(request, "campaigns/campaign_detail.html", context)


@require_POST
def members_bulk(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove the ticked members, or give them a status."""
    campaign = _get_campaign_for_user(request, pk, edit=True)
    ids = ids_from(request.POST.getlist("select"))
    if not ids:
        messages.error(request, "Tick at least one member first.")
        return redirect(campaign)
    if request.POST.get("action") == "remove":
        removed = members_remove(campaign=campaign, member_ids=ids)
        messages.success(request, f"{removed} member{'s' * (removed != 1)} removed.")
        return redirect(campaign)
    status = campaign.statuses.filter(pk__in=ids_from([request.POST.get("status", "")])).first()
    if status is None:
        messages.error(request, "Choose the status to give them.")
        return redirect(campaign)
    count = members_status_set(campaign=campaign, member_ids=ids, status=status)
    messages.success(request, f"{count} member{'s' * (count != 1)} set to {status}.")
    return redirect(campaign)


def _people_chosen(request: HttpRequest, data: QueryDict) -> tuple[str, QuerySet[Any]]:
    """The Contacts or Leads to add: the ticked rows, or every row of the list's filter."""
    kind = data.get("kind", "")
    if kind not in PEOPLE:
        raise Http404("Unknown kind of record.")
    model, filter_class = PEOPLE[kind]
    visible = model.objects.visible_to(_user(request))
    if data.get("scope") == "all":
        query = QueryDict(data.get("query", ""))
        return kind, filter_class(query, queryset=visible, user=_user(request)).qs
    return kind, visible.filter(pk__in=ids_from(data.getlist("select")))


@require_http_methods(["GET", "POST"])
def members_add_view(request: HttpRequest) -> HttpResponse:
    """From a Contact or Lead list: GET confirms what will be added, POST adds it."""
    user = _user(request)
    if not user.has_perm("campaigns.view_campaign"):
        raise PermissionDenied
    data = request.POST if request.method == "POST" else request.GET
    kind, people = _people_chosen(request, data)
    campaigns = [
        c for c in Campaign.objects.active().select_related("owner") if c.editable_by(user)
    ]
    count = people.count()
    if request.method == "POST":
        campaign = next((c for c in campaigns if str(c.pk) == request.POST.get("campaign")), None)
        if campaign is None:
            messages.error(request, "Choose a campaign you may add members to.")
        elif not count:
            messages.error(request, "There is no one to add.")
        else:
            ids = list(people.values_list("pk", flat=True))
            added = members_add(
                campaign=campaign,
                contact_ids=ids if kind == "contact" else (),
                lead_ids=ids if kind == "lead" else (),
            )
            already = count - added
            note = f" ({already} already members)" if already else ""
            messages.success(request, f"{added} {kind}{'s' * (added != 1)} added{note}.")
            return redirect(campaign)
    context = {
        "kind": kind,
        "count": count,
        "sample": people.order_by("last_name", "first_name")[:10],
        "campaigns": campaigns,
        "scope": data.get("scope", ""),
        "query": data.get("query", ""),
        "selected": data.getlist("select"),
        "back_url": reverse(f"crm:{kind}_list")
        + (f"?{data.get('query')}" if data.get("query") else ""),
    }
    return render(request, "campaigns/members_add.html", context)


def member_statuses(request: HttpRequest, pk: int) -> HttpResponse:
    """The campaign's member statuses: labels, order, default, responded, funnel step."""
    campaign = _get_campaign_for_user(request, pk, edit=True)
    formset = forms.MemberStatusFormSet(
        request.POST or None, queryset=campaign.statuses.all(), prefix="statuses"
    )
    if request.method == "POST" and formset.is_valid():
        member_statuses_save(
            campaign=campaign,
            statuses=formset.save(commit=False),
            deleted=formset.deleted_objects,
        )
        messages.success(request, "Member statuses saved.")
        return redirect(campaign)
    return render(
        request, "campaigns/member_statuses.html", {"campaign": campaign, "formset": formset}
    )


def list_email_compose(request: HttpRequest, pk: int) -> HttpResponse:
    """Write a list email to the campaign's members (or those of the member list's filter)."""
    campaign = _get_campaign_for_user(request, pk, edit=True)
    query = request.POST.get("query", "") if request.method == "POST" else request.GET.urlencode()
    member_filter = filters.MemberFilter(
        QueryDict(query), queryset=campaign.members.all(), campaign=campaign
    )
    members = member_filter.qs
    count = members.count()
    user = _user(request)
    action = request.POST.get("action", "send")
    form = forms.ListEmailForm(
        request.POST or None,
        members=members,
        user=user,
        later=action == "later",
        sending_now=action == "send",
    )
    preview: dict[str, Any] | None = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        member = data["preview_member"]
        if action in ("preview", "test") and member is None:
            form.add_error("preview_member", "Choose a member to preview the email as.")
        elif action == "preview":
            preview = _as_member_reads_it(member, user, data["subject"], data["html_body"])
        elif not user.email:
            form.add_error(None, "Your user has no email address to send from; ask an admin.")
        elif action == "test":
            shown = _as_member_reads_it(member, user, data["subject"], data["html_body"])
            try:
                email_send(
                    sender=user,
                    to=[user.email],
                    subject=f"[Test] {shown['subject']}",
                    html_body=shown["html_body"],
                )
            except SendRefused as refused:
                form.add_error(None, str(refused))
            else:
                messages.success(
                    request,
                    f"A test went to {user.email}, filled as {shown['name']} would get it. "
                    "Nothing was sent to the members yet.",
                )
            preview = shown
        elif not count:
            form.add_error(None, "No members to send to.")
        else:
            send_at = data["send_at"] if action == "later" else None
            list_email = list_email_create(
                campaign=campaign,
                sender=user,
                subject=data["subject"],
                html_body=data["html_body"],
                members=members,
                template=data["template"],
                send_at=send_at,
            )
            if send_at is None:
                messages.success(request, f"List email queued for {count} members.")
            else:
                when = timezone.localtime(send_at, user_zone(user))
                messages.success(
                    request,
                    f"List email to {count} members scheduled for {when:%a, %b} {when.day}, "
                    f"{when:%Y at %H:%M} ({when.tzinfo}). You can change or cancel it here "
                    "until the first batch goes.",
                )
            return redirect(list_email)
    context = {
        "campaign": campaign,
        "form": form,
        "count": count,
        "query": query,
        "body": editable_html(form["html_body"].value() or ""),
        "preview": preview,
        "templates": editable_templates(user),
    }
    return render(request, "campaigns/list_email_compose.html", context)


def _as_member_reads_it(
    member: CampaignMember, sender: User, subject: str, html_body: str
) -> dict[str, Any]:
    """The subject and body with a member's merge values, and the body made safe to show."""
    person = member.contact or member.lead
    name, address = (person.name, person.email) if person else ("", "")
    values = merge_values(person, name, address, sender)
    body = merge.merge(html_body, values, as_html=True)
    return {
        "name": name,
        "subject": merge.merge(subject, values, as_html=False),
        "html_body": body,
        "shown": safe_email_html(body),
    }


def _get_list_email(request: HttpRequest, pk: int, email_pk: int) -> ListEmail:
    campaign = _get_campaign_for_user(request, pk)
    return get_object_or_404(
        ListEmail.objects.select_related("sender", "campaign"), pk=email_pk, campaign=campaign
    )


def list_email_detail(request: HttpRequest, pk: int, email_pk: int) -> HttpResponse:
    list_email = _get_list_email(request, pk, email_pk)
    copy = Relation.objects.filter(email_id=OuterRef("email_id"), relation_type="to")
    recipients = list_email.recipients.filter(_people_seen_by(_user(request)))
    recipients = recipients.select_related("contact", "lead").annotate(
        delivery=Subquery(copy.values("delivery_status")[:1]),
        unconfirmed=Exists(copy.filter(delivery_status="sending", refusal_reason=UNCONFIRMED)),
        human_opens=_unprofiled(Subquery(copy.values("human_opens")[:1])),
        human_clicks=_unprofiled(Subquery(copy.values("human_clicks")[:1])),
    )
    recipient_filter = filters.RecipientFilter(request.GET or None, queryset=recipients)
    table = table_configure(request, tables.RecipientTable(recipient_filter.qs), per_page=50)
    # The heading shows the subject as a member reads it (merge fields filled), the first's.
    subject, reader = list_email.subject, ""
    if merge.has_fields(subject):
        first = recipients.first()
        person = (first.contact or first.lead) if first else None
        if person is not None:
            values = merge_values(person, person.name, person.email, list_email.sender)
            subject, reader = merge.merge(subject, values, as_html=False), person.name
    context = {
        "list_email": list_email,
        "subject": subject,
        "reader": reader,
        "campaign": list_email.campaign,
        "progress": list_email_progress(list_email=list_email),
        "zone": user_zone(_user(request)),
        "can_edit": list_email.campaign.editable_by(_user(request)),
        "table": table,
        "filter": recipient_filter,
    }
    return render(request, "campaigns/list_email_detail.html", context)


def list_email_edit(request: HttpRequest, pk: int, email_pk: int) -> HttpResponse:
    """Change a scheduled list email's subject, body or time before its first batch goes."""
    campaign = _get_campaign_for_user(request, pk, edit=True)
    list_email = get_object_or_404(ListEmail, pk=email_pk, campaign=campaign)
    user = _user(request)
    form = forms.ListEmailForm(
        request.POST if request.method == "POST" else None,
        initial={
            "subject": list_email.subject,
            "html_body": list_email.html_body,
            "send_at": list_email.send_at,
        },
        user=user,
        later=True,
    )
    for name in ("template", "preview_member"):
        del form.fields[name]
    if request.method == "POST" and not list_email.is_waiting:
        form.add_error(None, "It can no longer be changed: its first batch has gone.")
    elif request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if list_email_reschedule(
            list_email=list_email,
            subject=data["subject"],
            html_body=data["html_body"],
            send_at=data["send_at"],
        ):
            messages.success(request, "Scheduled list email changed.")
            return redirect(list_email)
        form.add_error(None, "It can no longer be changed: its first batch has gone.")
    context = {
        "campaign": campaign,
        "list_email": list_email,
        "form": form,
        "body": editable_html(form["html_body"].value() or ""),
        "templates": {},
    }
    return render(request, "campaigns/list_email_edit.html", context)


def list_email_cancel_view(request: HttpRequest, pk: int, email_pk: int) -> HttpResponse:
    """Cancel a scheduled list email before its first batch goes, after a confirmation."""
    campaign = _get_campaign_for_user(request, pk, edit=True)
    list_email = get_object_or_404(ListEmail, pk=email_pk, campaign=campaign)
    if request.method == "POST":
        if list_email_cancel(list_email=list_email):
            messages.success(request, f"“{list_email}” cancelled: nobody was sent it.")
        else:
            messages.error(request, "It can no longer be cancelled: its first batch has gone.")
        return redirect(list_email)
    context = {
        "campaign": campaign,
        "list_email": list_email,
        "zone": user_zone(_user(request)),
    }
    return render(request, "campaigns/list_email_confirm_cancel.html", context)


def list_email_progress_json(request: HttpRequest, pk: int, email_pk: int) -> JsonResponse:
    list_email = _get_list_email(request, pk, email_pk)
    return JsonResponse(list_email_progress(list_email=list_email).as_dict())


_MARKER = "https://clickmap.openrate.invalid/"
_MARKED_LINK = re.compile(
    r'(<a\b[^>]*href="' + re.escape(_MARKER) + r'(\d+)"[^>]*>.*?</a>)', re.DOTALL
)


def click_map(html: str, clicks: dict[str, tuple[int, int]]) -> str:
    """The email's HTML, sanitised, with each link's human (and machine) clicks beside it."""
    destinations: list[str] = []

    def mark(url: str) -> str:
        destinations.append(url)
        return f"{_MARKER}{len(destinations) - 1}"

    marked = safe_email_html(rewrite_html(html, url_for=mark, pixel_url=None, honeypot_url=None))

    def badge(match: re.Match[str]) -> str:
        url = destinations[int(match.group(2))]
        human, machine = clicks.get(url, (0, 0))
        link = match.group(1).replace(f"{_MARKER}{match.group(2)}", url.replace('"', "%22"))
        return (
            f'{link}<span style="background:#0d6efd;color:#fff;border-radius:1em;'
            f'padding:0 .5em;margin-left:.3em;font-size:.8em" title="{machine} machine clicks">'
            f"{human} click{'s' * (human != 1)}</span>"
        )

    return _MARKED_LINK.sub(badge, marked)


def campaign_report(request: HttpRequest, pk: int) -> HttpResponse:
    """The funnel, human vs machine opens, clicks per link and a click map per list email."""
    campaign = _get_campaign_for_user(request, pk)
    statuses = list(campaign.statuses.annotate(count=Count("members")))
    total = sum(status.count for status in statuses)
    by_step: dict[int | None, int] = {}
    for status in statuses:
        by_step[status.funnel_step] = by_step.get(status.funnel_step, 0) + status.count
    funnel = [
        {
            "label": status.label,
            "has_responded": status.has_responded,
            "count": status.count,
            "percent": round(100 * status.count / total) if total else 0,
        }
        for status in statuses
    ]
    list_emails = list(campaign.list_emails.all())
    # A list email named in the query scopes the opens, clicks and links to its own copies
    # (the list email page links here so); the click map shows it, or the latest.
    named = next((e for e in list_emails if str(e.pk) == request.GET.get("email")), None)
    chosen = named or (list_emails[0] if list_emails else None)
    clickmap = None
    emails = EmailMessage.objects.filter(campaign=campaign)
    chosen_emails = None
    if chosen is not None:
        chosen_emails = EmailMessage.objects.filter(
            pk__in=chosen.recipients.filter(email__isnull=False).values("email_id")
        )
        chosen_clicks = {
            row["url"]: (row["human"], row["machine"]) for row in link_clicks(emails=chosen_emails)
        }
        clickmap = click_map(chosen.html_body, chosen_clicks)
    if named is not None and chosen_emails is not None:
        emails = chosen_emails
    context = {
        "campaign": campaign,
        "funnel": funnel,
        "reached": funnel_from_counts(by_step),
        "members": total,
        "named": named,
        "engagement": campaign_engagement(campaign=campaign, emails=emails),
        "links": link_clicks(emails=emails),
        "list_emails": list_emails,
        "chosen": chosen,
        "clickmap": clickmap,
    }
    return render(request, "campaigns/campaign_report.html", context)


@permission_required("campaigns.view_campaign", raise_exception=True)
def influence(request: HttpRequest) -> HttpResponse:
    """Influenced pipeline, won revenue and ROI per campaign, under the chosen model."""
    form = forms.InfluenceModelForm(request.GET or None)
    model = form.cleaned_data["model"] if form.is_valid() else InfluenceModel.PRIMARY
    campaigns = Campaign.objects.order_by("name")
    if chosen := ids_from([request.GET.get("campaign", "")]):
        campaigns = campaigns.filter(pk__in=chosen)
    context = {
        "form": form,
        "model": InfluenceModel(model),
        "rows": influence_report(campaigns=campaigns, model=model),
    }
    return render(request, "campaigns/influence.html", context)


def _relation_for_token(token: str) -> Relation:
    # Only an unsubscribe token (or the one token of a copy sent before tokens had purposes):
    # whoever sees a pixel or click URL cannot unsubscribe its recipient.
    relation = relation_for_token(
        token, Purpose.UNSUBSCRIBE, Relation.objects.select_related("contact", "lead", "email")
    )
    if relation is None:
        raise Http404("This unsubscribe link is not valid.")
    return relation


@login_not_required
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """RFC 8058: the mail client's one-click POST unsubscribes, authenticated by the signed
    token alone (no login, no cookie, so no CSRF token). A GET only asks to confirm, so link
    scanners that follow every URL in a message unsubscribe no one."""
    relation = _relation_for_token(token)
    if request.method == "POST":
        if request.POST.get("List-Unsubscribe") != "One-Click":
            return HttpResponseBadRequest("Expected List-Unsubscribe=One-Click.")
        unsubscribe_record(relation=relation)
        return render(request, "campaigns/unsubscribed.html", {"address": relation.address})
    return render(
        request, "campaigns/unsubscribe.html", {"address": relation.address, "token": token}
    )
