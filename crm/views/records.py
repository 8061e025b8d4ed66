"""The record pages: lists, detail pages, create, edit and delete for Accounts, Contacts,
Leads, Opportunities and Tasks, the email list, and the home page's own records."""

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.db.models import ProtectedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import capfirst
from django.views.decorators.http import require_POST
from django_filters.views import FilterView

from crm import conversion, filters, forms, tables
from crm.conversion import Conversion, LeadAlreadyConverted
from crm.listing import BoundedTableMixin, filter_query, ids_from, table_configure
from crm.models import (
    Account,
    Contact,
    EmailMessage,
    Lead,
    Opportunity,
    OwnedRecord,
    Task,
)
from crm.views.access import (
    current_user,
    get_record_for_user,
)
from crm.views.timeline import privacy_context, timeline_context


def _edit_record(
    request: HttpRequest,
    *,
    form_class: type[forms.RecordForm],
    instance: OwnedRecord | None,
    title: str,
    initial: dict[str, Any] | None = None,
) -> HttpResponse:
    """Show a record's form; on a valid POST save it and go to its page."""
    form = form_class(
        request.POST or None, instance=instance, initial=initial, user=current_user(request)
    )
    if request.method == "POST" and form.is_valid():
        record = form.save()
        messages.success(request, f"{capfirst(record._meta.verbose_name)} “{record}” saved.")
        return redirect(record)
    if request.method == "POST":
        messages.error(request, "Please correct the errors below; nothing was saved.")
    if instance is not None:
        cancel_url = instance.get_absolute_url()
    else:
        cancel_url = reverse(f"crm:{form_class._meta.model._meta.model_name}_list")
    return render(
        request, "crm/record_form.html", {"form": form, "title": title, "cancel_url": cancel_url}
    )


def _delete_record(request: HttpRequest, record: OwnedRecord, list_url: str) -> HttpResponse:
    """GET asks for confirmation; POST deletes and goes back to the list."""
    if request.method == "POST":
        label = f"{capfirst(record._meta.verbose_name)} “{record}”"
        try:
            record.delete()
        except ProtectedError:
            messages.error(request, f"{label} is still in use and cannot be deleted.")
            return redirect(record)
        messages.success(request, f"{label} deleted.")
        return redirect(list_url)
    consequence = {
        "account": "Its opportunities and tasks are deleted with it; its contacts are kept.",
        "contact": "Its tasks and opportunity roles are deleted with it.",
        "lead": "Its tasks are deleted with it.",
        "opportunity": "Its tasks and contact roles are deleted with it.",
    }.get(record._meta.model_name or "", "")
    context = {"record": record, "noun": record._meta.verbose_name, "consequence": consequence}
    return render(request, "crm/record_confirm_delete.html", context)


def home_context(request: HttpRequest) -> dict[str, Any]:
    """The home page's own records and tasks (reports.views.home adds the user's dashboard)."""
    user = current_user(request)
    today = timezone.localdate()
    my_tasks = (
        Task.objects.owned_by(user)
        .open()
        .select_related("who_contact", "who_lead")
        .order_by("due_date", "pk")
    )
    return {
        "tasks": my_tasks[:10],
        "open_task_count": my_tasks.count(),
        "overdue_count": my_tasks.filter(due_date__lt=today).count(),
        "today": today,
        "counts": {
            "Accounts": (Account.objects.owned_by(user).count(), "crm:account_list"),
            "Contacts": (Contact.objects.owned_by(user).count(), "crm:contact_list"),
            "Leads": (
                Lead.objects.owned_by(user).exclude(status=Lead.Status.CONVERTED).count(),
                "crm:lead_list",
            ),
            "Open opportunities": (
                Opportunity.objects.owned_by(user).open().count(),
                "crm:opportunity_list",
            ),
        },
    }


class RecordListView(PermissionRequiredMixin, BoundedTableMixin, FilterView):
    """A sortable, filterable, paginated list of the records this user may see."""

    template_name = "crm/record_list.html"
    raise_exception = True
    select_related: tuple[str, ...] = ("owner",)
    creatable = True

    def get_queryset(self) -> Any:
        visible = self.model.objects.visible_to(self.request.user)
        return visible.select_related(*self.select_related)

    def get_filterset_kwargs(self, filterset_class: Any) -> dict[str, Any]:
        kwargs = super().get_filterset_kwargs(filterset_class)
        kwargs["user"] = self.request.user
        return kwargs

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        meta = self.model._meta
        context["title"] = meta.verbose_name_plural.capitalize()
        context["noun"] = meta.verbose_name
        if self.creatable:
            context["create_url"] = reverse(f"crm:{meta.model_name}_create")
            context["can_create"] = self.request.user.has_perm(f"crm.add_{meta.model_name}")
        context["is_filtered"] = bool(filter_query(self.request))
        return context


class AccountListView(RecordListView):
    model = Account
    table_class = tables.AccountTable
    filterset_class = filters.AccountFilter
    permission_required = "crm.view_account"
    select_related = ("owner", "activity")


class PeopleListView(RecordListView):
    """Contacts and Leads: ticked rows, or every row of the filter, can join a campaign."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        if self.request.user.has_perm("campaigns.view_campaign"):
            context["member_kind"] = self.model._meta.model_name
            context["filter_query"] = filter_query(self.request)
        return context


class ContactListView(PeopleListView):
    model = Contact
    table_class = tables.ContactTable
    filterset_class = filters.ContactFilter
    permission_required = "crm.view_contact"
    select_related = ("owner", "account", "activity")


class LeadListView(PeopleListView):
    model = Lead
    table_class = tables.LeadTable
    filterset_class = filters.LeadFilter
    permission_required = "crm.view_lead"
    select_related = ("owner", "activity")


class OpportunityListView(RecordListView):
    model = Opportunity
    table_class = tables.OpportunityTable
    filterset_class = filters.OpportunityFilter
    permission_required = "crm.view_opportunity"
    select_related = ("owner", "account")


class TaskListView(RecordListView):
    model = Task
    table_class = tables.TaskTable
    filterset_class = filters.TaskFilter
    permission_required = "crm.view_task"
    select_related = ("owner", "who_contact", "who_lead")


class EmailListView(RecordListView):
    model = EmailMessage
    table_class = tables.EmailTable
    filterset_class = filters.EmailFilter
    permission_required = "crm.view_emailmessage"
    select_related = ("sender",)
    creatable = False

    def get_queryset(self) -> Any:
        visible = EmailMessage.objects.visible_to(self.request.user)
        return visible.select_related("sender").defer("html_body", "text_body")


# Accounts


@permission_required("crm.view_account", raise_exception=True)
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_record_for_user(Account, request, pk, "activity")
    user = current_user(request)
    context = {
        "account": account,
        # Related lists show only the records this user may see (another rep's contact may
        # sit on this account).
        "contacts": account.contacts.visible_to(user).select_related("owner")[:50],
        "opportunities": account.opportunities.visible_to(user).select_related("owner")[:50],
        **timeline_context(request, account, "account"),
    }
    return render(request, "crm/account_detail.html", context)


@permission_required("crm.add_account", raise_exception=True)
def account_create(request: HttpRequest) -> HttpResponse:
    return _edit_record(request, form_class=forms.AccountForm, instance=None, title="New account")


@permission_required("crm.change_account", raise_exception=True)
def account_edit(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_record_for_user(Account, request, pk)
    return _edit_record(
        request, form_class=forms.AccountForm, instance=account, title=f"Edit {account}"
    )


@permission_required("crm.delete_account", raise_exception=True)
def account_delete(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_record_for_user(Account, request, pk)
    return _delete_record(request, account, reverse("crm:account_list"))


# Contacts


@permission_required("crm.view_contact", raise_exception=True)
def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    contact = get_record_for_user(Contact, request, pk, "account", "individual", "activity")
    context = {
        "contact": contact,
        "roles": contact.roles.filter(
            opportunity__in=Opportunity.objects.visible_to(current_user(request))
        ).select_related("opportunity")[:20],
        "privacy": privacy_context(request, contact),
        **timeline_context(request, contact, "contact"),
    }
    return render(request, "crm/contact_detail.html", context)


@permission_required("crm.add_contact", raise_exception=True)
def contact_create(request: HttpRequest) -> HttpResponse:
    initial = {"account": request.GET.get("account")} if request.GET.get("account") else None
    return _edit_record(
        request, form_class=forms.ContactForm, instance=None, title="New contact", initial=initial
    )


@permission_required("crm.change_contact", raise_exception=True)
def contact_edit(request: HttpRequest, pk: int) -> HttpResponse:
    contact = get_record_for_user(Contact, request, pk)
    return _edit_record(
        request, form_class=forms.ContactForm, instance=contact, title=f"Edit {contact}"
    )


@permission_required("crm.delete_contact", raise_exception=True)
def contact_delete(request: HttpRequest, pk: int) -> HttpResponse:
    contact = get_record_for_user(Contact, request, pk)
    return _delete_record(request, contact, reverse("crm:contact_list"))


# Leads


@permission_required("crm.view_lead", raise_exception=True)
def lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    lead = get_record_for_user(
        Lead,
        request,
        pk,
        "individual",
        "activity",
        "converted_contact",
        "converted_account",
        "converted_opportunity",
    )
    context = {
        "lead": lead,
        "privacy": privacy_context(request, lead),
        **timeline_context(request, lead, "lead"),
    }
    return render(request, "crm/lead_detail.html", context)


@permission_required("crm.add_lead", raise_exception=True)
def lead_create(request: HttpRequest) -> HttpResponse:
    return _edit_record(request, form_class=forms.LeadForm, instance=None, title="New lead")


@permission_required("crm.change_lead", raise_exception=True)
def lead_edit(request: HttpRequest, pk: int) -> HttpResponse:
    lead = get_record_for_user(Lead, request, pk)
    if lead.is_converted:
        messages.info(request, "A converted lead is kept as it was; edit its contact instead.")
        return redirect(lead)
    return _edit_record(request, form_class=forms.LeadForm, instance=lead, title=f"Edit {lead}")


@permission_required("crm.delete_lead", raise_exception=True)
def lead_delete(request: HttpRequest, pk: int) -> HttpResponse:
    lead = get_record_for_user(Lead, request, pk)
    return _delete_record(request, lead, reverse("crm:lead_list"))


@permission_required(
    ["crm.change_lead", "crm.add_contact", "crm.add_account"], raise_exception=True
)
def lead_convert(request: HttpRequest, pk: int) -> HttpResponse:
    lead = get_record_for_user(Lead, request, pk)
    if lead.is_converted:
        messages.info(request, str(LeadAlreadyConverted(lead)))
        return redirect(lead)
    form = forms.LeadConvertForm(
        request.POST or None,
        initial={"opportunity_name": f"{lead.company} -"},
        user=current_user(request),
    )
    if request.method == "POST" and form.is_valid():
        try:
            done = conversion.lead_convert(
                lead_id=lead.pk,
                account=form.cleaned_data["account"],
                opportunity_name=form.cleaned_data["opportunity_name"].strip(),
            )
        except LeadAlreadyConverted as refused:
            # Someone converted it between this page and the click.
            messages.error(request, str(refused))
            return redirect(lead)
        made = [
            *([] if form.cleaned_data["account"] else ["a new account"]),
            "a contact",
            *(["an opportunity"] if done.opportunity else []),
        ]
        into = ", ".join(made[:-1]) + " and " + made[-1] if len(made) > 1 else made[0]
        messages.success(request, f"{lead} converted into {into}. {_history_moved(done)}")
        return redirect(done.contact)
    return render(request, "crm/lead_convert.html", {"lead": lead, "form": form})


def _history_moved(done: Conversion) -> str:
    """What of the lead's story now shows on the contact, in words."""
    moved = [
        f"{count} {noun}{'' if count == 1 else 's'}"
        for count, noun in ((done.emails_moved, "email"), (done.tasks_moved, "task"))
        if count
    ]
    if not moved:
        return "The lead had no emails or tasks to move."
    return f"{' and '.join(moved)} moved from the lead to {done.contact}."


# Opportunities


@permission_required("crm.view_opportunity", raise_exception=True)
def opportunity_detail(request: HttpRequest, pk: int) -> HttpResponse:
    opportunity = get_record_for_user(Opportunity, request, pk, "account", "campaign", "activity")
    context = {
        "opportunity": opportunity,
        "account": opportunity.account,
        "campaign": opportunity.campaign,
        "roles": opportunity.roles.filter(
            contact__in=Contact.objects.visible_to(current_user(request))
        ).select_related("contact")[:50],
        **timeline_context(request, opportunity, "opportunity"),
    }
    return render(request, "crm/opportunity_detail.html", context)


@permission_required("crm.add_opportunity", raise_exception=True)
def opportunity_create(request: HttpRequest) -> HttpResponse:
    initial: dict[str, Any] = {"close_date": timezone.localdate() + timedelta(days=30)}
    if request.GET.get("account"):
        initial["account"] = request.GET["account"]
    return _edit_record(
        request,
        form_class=forms.OpportunityForm,
        instance=None,
        title="New opportunity",
        initial=initial,
    )


@permission_required("crm.change_opportunity", raise_exception=True)
def opportunity_edit(request: HttpRequest, pk: int) -> HttpResponse:
    opportunity = get_record_for_user(Opportunity, request, pk)
    return _edit_record(
        request,
        form_class=forms.OpportunityForm,
        instance=opportunity,
        title=f"Edit {opportunity}",
    )


@permission_required("crm.delete_opportunity", raise_exception=True)
def opportunity_delete(request: HttpRequest, pk: int) -> HttpResponse:
    opportunity = get_record_for_user(Opportunity, request, pk)
    return _delete_record(request, opportunity, reverse("crm:opportunity_list"))


# Tasks


@permission_required("crm.view_task", raise_exception=True)
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_record_for_user(
        Task, request, pk, "who_contact", "who_lead", "what_account", "what_opportunity"
    )
    return render(request, "crm/task_detail.html", {"task": task})


@permission_required("crm.view_task", raise_exception=True)
def my_tasks(request: HttpRequest) -> HttpResponse:
    """The user's open follow-ups and engagement alerts: the work Openrate made for them."""
    queryset = (
        Task.objects.owned_by(current_user(request))
        .open()
        .exclude(kind=Task.Kind.REGULAR)
        .select_related("who_contact", "who_lead", "what_opportunity")
    )
    task_filter = filters.MyTaskFilter(request.GET or None, queryset=queryset)
    table = tables.MyTaskTable(task_filter.qs)
    table_configure(request, table)
    return render(request, "crm/my_tasks.html", {"table": table, "filter": task_filter})


@permission_required("crm.add_task", raise_exception=True)
def task_create(request: HttpRequest) -> HttpResponse:
    initial = {
        key: ids[0]
        for key in ("who_contact", "who_lead", "what_account", "what_opportunity")
        if (ids := ids_from([request.GET.get(key, "")]))
    }
    return _edit_record(
        request, form_class=forms.TaskForm, instance=None, title="New task", initial=initial
    )


@permission_required("crm.change_task", raise_exception=True)
def task_edit(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_record_for_user(Task, request, pk)
    return _edit_record(request, form_class=forms.TaskForm, instance=task, title=f"Edit {task}")


@require_POST
@permission_required("crm.change_task", raise_exception=True)
def task_complete(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_record_for_user(Task, request, pk)
    if not task.is_completed:
        task.complete()
        messages.success(request, f"Task “{task}” marked done.")
    next_url = request.POST.get("next", "")
    if next_url.startswith("/") and not next_url.startswith("//"):
        return redirect(next_url)
    return redirect(task)


@permission_required("crm.delete_task", raise_exception=True)
def task_delete(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_record_for_user(Task, request, pk)
    return _delete_record(request, task, reverse("crm:task_list"))
