"""The automation pages: sequences (steps, figures, enrolments), enrolling people from the list
and record pages, an enrolment's history and its stop / pause / resume, triggered-email rules."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import Resolver404, resolve, reverse
from django.views.decorators.http import require_http_methods, require_POST

from automation.enrolment import (
    EnrolRefused,
    enrolment_pause,
    enrolment_plan,
    enrolment_resume,
    enrolment_stop,
    people_enrol,
)
from automation.figures import sequence_figures
from automation.forms import RuleForm, SequenceForm, StepForm
from automation.models import Enrolment, EnrolmentQuerySet, Rule, Sequence, Step
from crm import filters as crm_filters
from crm.listing import ids_from
from crm.models import Contact, Lead, User
from crm.views.access import current_user

PER_PAGE = 25
# Enrolling a whole filter at once: beyond this, narrow the filter (the confirmation reads
# every person's privacy flags).
MAX_ENROL = 5000
PEOPLE: dict[str, tuple[type[Contact] | type[Lead], Any]] = {
    "contact": (Contact, crm_filters.ContactFilter),
    "lead": (Lead, crm_filters.LeadFilter),
}


def _visible_enrolments(user: User) -> EnrolmentQuerySet:
    """Enrolments of the records this user may see (the one access rule, visible_to)."""
    return Enrolment.objects.filter(
        Q(contact__in=Contact.objects.visible_to(user)) | Q(lead__in=Lead.objects.visible_to(user))
    )


def _get_enrolment_for_user(request: HttpRequest, pk: int) -> Enrolment:
    return get_object_or_404(
        _visible_enrolments(current_user(request)).select_related(
            "sequence", "contact", "lead", "owner", "current_step__template"
        ),
        pk=pk,
    )


@permission_required("automation.view_sequence", raise_exception=True)
def sequence_list(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("status", "")
    if show not in Sequence.Status.values:
        show = Sequence.Status.ACTIVE
    sequences = (
        Sequence.objects.filter(status=show)
        .select_related("owner")
        .annotate(last_enrolled=Max("enrolments__created_at"))
        .order_by("name", "pk")
    )
    page = Paginator(sequences, PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "automation/sequence_list.html",
        {"page": page, "show": show, "statuses": Sequence.Status.choices},
    )


@permission_required("automation.add_sequence", raise_exception=True)
def sequence_create(request: HttpRequest) -> HttpResponse:
    return _sequence_form(request, None)


@permission_required("automation.change_sequence", raise_exception=True)
def sequence_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _sequence_form(request, get_object_or_404(Sequence, pk=pk))


def _sequence_form(request: HttpRequest, sequence: Sequence | None) -> HttpResponse:
    form = SequenceForm(request.POST or None, instance=sequence)
    if request.method == "POST" and form.is_valid():
        if sequence is None:
            form.instance.owner = current_user(request)
        saved = form.save()
        messages.success(request, f"Sequence “{saved}” saved.")
        return redirect(saved)
    if request.method == "POST":
        messages.error(request, "Please correct the errors below; nothing was saved.")
    return render(request, "automation/sequence_form.html", {"form": form, "sequence": sequence})


@permission_required("automation.view_sequence", raise_exception=True)
def sequence_detail(request: HttpRequest, pk: int) -> HttpResponse:
    sequence = get_object_or_404(Sequence.objects.select_related("owner"), pk=pk)
    user = current_user(request)
    steps, statuses = sequence_figures(sequence=sequence)
    status = request.GET.get("enrolments", "running")
    enrolments = (
        _visible_enrolments(user)
        .filter(sequence=sequence)
        .select_related("contact", "lead", "owner", "current_step__template")
    )
    if status == "running":
        enrolments = enrolments.running()
    elif status in Enrolment.Status.values:
        enrolments = enrolments.filter(status=status)
    page = Paginator(enrolments, PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "automation/sequence_detail.html",
        {
            "sequence": sequence,
            "steps": steps,
            "statuses": [
                (value, label, statuses.get(value, 0)) for value, label in Enrolment.Status.choices
            ],
            "status": status,
            "page": page,
            "can_edit": user.has_perm("automation.change_sequence"),
        },
    )


@require_POST
@permission_required("automation.change_sequence", raise_exception=True)
def sequence_archive(request: HttpRequest, pk: int) -> HttpResponse:
    sequence = get_object_or_404(Sequence, pk=pk)
    archive = sequence.is_active
    sequence.status = Sequence.Status.ARCHIVED if archive else Sequence.Status.ACTIVE
    sequence.save(update_fields=["status", "updated_at"])
    if archive:
        messages.success(
            request,
            f"“{sequence}” archived: no one new can be enrolled; those enrolled go on.",
        )
    else:
        messages.success(request, f"“{sequence}” is active again.")
    return redirect(sequence)


@permission_required("automation.add_step", raise_exception=True)
def step_create(request: HttpRequest, pk: int) -> HttpResponse:
    sequence = get_object_or_404(Sequence, pk=pk)
    form = StepForm(request.POST or None, user=current_user(request))
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            locked = Sequence.objects.select_for_update().get(pk=sequence.pk)
            last = locked.steps.aggregate(last=Max("position"))["last"] or 0
            form.instance.sequence, form.instance.position = locked, last + 1
            step = form.save()
        messages.success(request, f"Step {step.position} added: {step.describe()}.")
        return redirect(sequence)
    if request.method == "POST":
        messages.error(request, "Please correct the errors below; the step was not added.")
    return render(request, "automation/step_form.html", {"form": form, "sequence": sequence})


@require_http_methods(["GET", "POST"])
@permission_required("automation.delete_step", raise_exception=True)
def step_delete(request: HttpRequest, pk: int, step_pk: int) -> HttpResponse:
    # The sequence first: a foreign key lookup skips Django's out-of-range check on SQLite.
    sequence = get_object_or_404(Sequence, pk=pk)
    step = get_object_or_404(
        Step.objects.select_related("sequence", "template"), pk=step_pk, sequence=sequence
    )
    waiting = step.enrolments.running().count()
    ran = step.runs.count()
    if request.method == "POST":
        if waiting or ran:
            messages.error(
                request,
                "This step has run or has people at it, so it is kept (its figures and "
                "history name it). Archive the sequence and build a new one instead.",
            )
        else:
            step.delete()
            messages.success(request, "Step removed.")
        return redirect(step.sequence)
    return render(
        request,
        "automation/step_confirm_delete.html",
        {"step": step, "waiting": waiting, "ran": ran},
    )


def _people_chosen(request: HttpRequest, data: QueryDict) -> tuple[str, QuerySet[Any]]:
    """The Contacts or Leads to enrol: the ticked rows, or every row of the list's filter."""
    kind = data.get("kind", "")
    if kind not in PEOPLE:
        raise Http404("Unknown kind of record.")
    model, filter_class = PEOPLE[kind]
    user = current_user(request)
    visible = model.objects.visible_to(user)
    if data.get("scope") == "all":
        query = QueryDict(data.get("query", ""))
        return kind, filter_class(query, queryset=visible, user=user).qs
    return kind, visible.filter(pk__in=ids_from(data.getlist("select")))


def _local_url(value: str) -> str:
    """`value` if it is one of our pages' paths (where to go back to), else ""."""
    if not value.startswith("/") or value.startswith("//"):
        return ""
    try:
        resolve(value)
    except Resolver404:
        return ""
    return value


@require_http_methods(["GET", "POST"])
@permission_required("automation.add_enrolment", raise_exception=True)
def enrol(request: HttpRequest) -> HttpResponse:
    """From a list (ticked rows or the whole filter) or a record page: GET shows who will be
    enrolled and who is skipped and why; POST with a sequence enrols them."""
    user = current_user(request)
    data = request.POST if request.method == "POST" else request.GET
    kind, chosen = _people_chosen(request, data)
    model = PEOPLE[kind][0]
    back_url = _local_url(data.get("next", "")) or reverse(f"crm:{kind}_list")
    count = chosen.count()
    sequences = list(Sequence.objects.filter(status=Sequence.Status.ACTIVE).exclude(steps=None))
    sequence = next((s for s in sequences if str(s.pk) == data.get("sequence")), None)
    context: dict[str, Any] = {
        "kind": kind,
        "count": count,
        "sequences": sequences,
        "sequence": sequence,
        "scope": data.get("scope", ""),
        "query": data.get("query", ""),
        "selected": data.getlist("select"),
        "back_url": back_url,
        "too_many": count > MAX_ENROL,
        "max_enrol": MAX_ENROL,
    }
    if sequence is not None and 0 < count <= MAX_ENROL:
        related = ("individual", "account") if model is Contact else ("individual",)
        people = list(chosen.select_related(*related).order_by("last_name", "first_name", "pk"))
        if request.method == "POST":
            try:
                enrolments, plan = people_enrol(sequence=sequence, people=people, by=user)
            except EnrolRefused as error:
                messages.error(request, str(error))
                return redirect(back_url)
            skipped = f"; {len(plan.skipped)} skipped" if plan.skipped else ""
            messages.success(request, f"{len(enrolments)} enrolled in “{sequence}”{skipped}.")
            return redirect(back_url if count == 1 else sequence.get_absolute_url())
        plan = enrolment_plan(sequence=sequence, people=people)
        context["plan"] = plan
        context["reasons"] = Counter(reason for _, reason in plan.skipped).most_common()
        context["skipped_sample"] = plan.skipped[:50]
    return render(request, "automation/enrol_confirm.html", context)


@permission_required("automation.view_enrolment", raise_exception=True)
def enrolment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    enrolment = _get_enrolment_for_user(request, pk)
    events = enrolment.events.select_related("step__template")
    return render(
        request,
        "automation/enrolment_detail.html",
        {"enrolment": enrolment, "events": events, "can_change": _may_change(request, enrolment)},
    )


def _may_change(request: HttpRequest, enrolment: Enrolment) -> bool:
    user = current_user(request)
    return user.has_perm("automation.change_enrolment") and (
        enrolment.owner_id == user.pk or user.sees_all_records
    )


@require_http_methods(["GET", "POST"])
@permission_required("automation.change_enrolment", raise_exception=True)
def enrolment_change(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Stop (after a confirmation page), pause or resume: the enrolment's owner, or a manager
    or admin."""
    enrolment = _get_enrolment_for_user(request, pk)
    user = current_user(request)
    changes = {"stop": enrolment_stop, "pause": enrolment_pause, "resume": enrolment_resume}
    if action not in changes:
        raise Http404("Unknown action.")
    if not _may_change(request, enrolment):
        messages.error(request, "Only the enrolment's owner or a manager may change it.")
        return redirect("automation:enrolment_detail", pk=pk)
    if request.method == "GET":
        if action != "stop":
            return redirect("automation:enrolment_detail", pk=pk)
        return render(request, "automation/enrolment_confirm_stop.html", {"enrolment": enrolment})
    done = changes[action](enrolment=enrolment, by=user)
    past = {"stop": "stopped", "pause": "paused", "resume": "resumed"}[action]
    if done:
        messages.success(request, f"Enrolment {past}.")
    else:
        state = enrolment.get_status_display().lower()
        messages.error(request, f"It could not be {past}: it is {state}.")
    return redirect("automation:enrolment_detail", pk=pk)


@permission_required("automation.view_rule", raise_exception=True)
def rule_list(request: HttpRequest) -> HttpResponse:
    rules = (
        Rule.objects.select_related("template", "sequence", "sender")
        .annotate(last_fired=Max("firings__fired_at"))
        .order_by("name", "pk")
    )
    page = Paginator(rules, PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "automation/rule_list.html", {"page": page})


@permission_required("automation.add_rule", raise_exception=True)
def rule_create(request: HttpRequest) -> HttpResponse:
    return _rule_form(request, None)


@permission_required("automation.change_rule", raise_exception=True)
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _rule_form(request, get_object_or_404(Rule, pk=pk))


def _rule_form(request: HttpRequest, rule: Rule | None) -> HttpResponse:
    user = current_user(request)
    form = RuleForm(request.POST or None, instance=rule, user=user)
    if request.method == "POST" and form.is_valid():
        if rule is None:
            form.instance.created_by = user
        saved = form.save()
        messages.success(request, f"Rule “{saved}” saved.")
        return redirect(saved)
    if request.method == "POST":
        messages.error(request, "Please correct the errors below; nothing was saved.")
    return render(request, "automation/rule_form.html", {"form": form, "rule": rule})


@permission_required("automation.view_rule", raise_exception=True)
def rule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(Rule.objects.select_related("template", "sequence", "sender"), pk=pk)
    firings = rule.firings.select_related("contact", "lead", "email", "enrolment")
    page = Paginator(firings, PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "automation/rule_detail.html", {"rule": rule, "page": page})
