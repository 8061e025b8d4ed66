"""The email template library: the list (folders, search, archived), a template's page with
its preview as a chosen record would get it, create, edit, clone, archive and delete (only an
unused one, after a confirmation)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from crm import forms
from crm.listing import page_size, search_text
from crm.models import Contact, EmailTemplate, Lead, User
from crm.templates_library import (
    TemplateInUse,
    template_archive,
    template_clone,
    template_delete,
    template_preview,
    template_uses,
)
from crm.views.access import current_user
from mailkit.display import editable_html, safe_email_html
from mailkit.merge import FIELDS, has_fields

# Records offered to fill the preview with: the latest the user may see, of each kind.
_PREVIEW_CHOICES = 50


def _get_template_for_user(request: HttpRequest, pk: int, *, edit: bool = False) -> EmailTemplate:
    """A template the user may see (shared, or their own private: else 404), and may change
    when asked (else 403)."""
    user = current_user(request)
    template = get_object_or_404(
        EmailTemplate.objects.visible_to(user).select_related("owner"), pk=pk
    )
    if edit and not template.editable_by(user):
        raise PermissionDenied
    return template


@permission_required("crm.view_emailtemplate", raise_exception=True)
def template_list(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    visible = EmailTemplate.objects.visible_to(user)
    archived = request.GET.get("show") == "archived"
    # NUL is no character a folder name or a search holds (and PostgreSQL refuses it).
    folder = request.GET.get("folder", "").replace("\x00", "")
    query = search_text(request.GET.get("q", "").replace("\x00", ""))
    templates = visible.filter(is_active=not archived).select_related("owner")
    if folder:
        templates = templates.filter(folder=folder)
    if query:
        templates = templates.filter(Q(name__icontains=query) | Q(subject__icontains=query))
    folders = list(
        visible.exclude(folder="").order_by("folder").values_list("folder", flat=True).distinct()
    )
    page = Paginator(templates, page_size(request.GET.get("per_page"))).get_page(
        request.GET.get("page")
    )
    context = {
        "page": page,
        "folders": folders,
        "folder": folder,
        "q": query,
        "archived": archived,
        "filtered": bool(folder or query),
        "can_create": user.has_perm("crm.add_emailtemplate"),
        "writes_shared": user.has_perm("crm.manage_shared_templates"),
    }
    return render(request, "crm/templates_list.html", context)


@permission_required("crm.view_emailtemplate", raise_exception=True)
def template_detail(request: HttpRequest, pk: int) -> HttpResponse:
    template = _get_template_for_user(request, pk)
    user = current_user(request)
    people = _preview_choices(user)
    chosen = _chosen_person(user, request.GET.get("person", ""))
    preview = None
    if chosen is not None:
        preview = template_preview(
            subject=template.subject, html_body=template.html_body, person=chosen, user=user
        )
    context = {
        "template": template,
        "body": safe_email_html(template.html_body),
        "people": people,
        "chosen": _person_key(chosen) if chosen else "",
        "preview": preview,
        "has_fields": has_fields(f"{template.subject}\n{template.html_body}"),
        "uses": template_uses(template),
        "can_edit": template.editable_by(user) and user.has_perm("crm.change_emailtemplate"),
        "can_delete": template.editable_by(user) and user.has_perm("crm.delete_emailtemplate"),
        "can_clone": user.has_perm("crm.add_emailtemplate"),
    }
    return render(request, "crm/templates_detail.html", context)


@permission_required("crm.add_emailtemplate", raise_exception=True)
def template_create(request: HttpRequest) -> HttpResponse:
    return _edit(request, None)


@permission_required("crm.change_emailtemplate", raise_exception=True)
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _edit(request, _get_template_for_user(request, pk, edit=True))


def _edit(request: HttpRequest, template: EmailTemplate | None) -> HttpResponse:
    user = current_user(request)
    form = forms.EmailTemplateForm(request.POST or None, instance=template, user=user)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        messages.success(request, f"Template “{saved}” saved.")
        return redirect(saved)
    context = {
        "form": form,
        "template": template,
        "body": editable_html(form["html_body"].value() or ""),
        "fields": FIELDS,
        "templates": {},
        "writes_shared": user.has_perm("crm.manage_shared_templates"),
    }
    return render(request, "crm/templates_form.html", context)


@require_POST
@permission_required("crm.add_emailtemplate", raise_exception=True)
def template_clone_view(request: HttpRequest, pk: int) -> HttpResponse:
    template = _get_template_for_user(request, pk)
    copy = template_clone(template=template, user=current_user(request))
    messages.success(request, f"Cloned as “{copy}”{' (private)' if copy.is_private else ''}.")
    return redirect("crm:template_edit", pk=copy.pk)


@require_POST
@permission_required("crm.change_emailtemplate", raise_exception=True)
def template_archive_view(request: HttpRequest, pk: int) -> HttpResponse:
    template = _get_template_for_user(request, pk, edit=True)
    restore = request.POST.get("restore") == "1"
    template_archive(template=template, archived=not restore)
    messages.success(
        request,
        f"“{template}” is back in the composers."
        if restore
        else f"“{template}” archived: no longer offered in the composers; what was sent from "
        "it keeps its name.",
    )
    return redirect(template)


@permission_required("crm.delete_emailtemplate", raise_exception=True)
def template_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    template = _get_template_for_user(request, pk, edit=True)
    uses = template_uses(template)
    if request.method == "POST" and not uses:
        try:
            template_delete(template=template)
        except TemplateInUse as error:
            messages.error(request, str(error))
            return redirect(template)
        messages.success(request, f"Template “{template}” deleted.")
        return redirect("crm:template_list")
    return render(
        request,
        "crm/templates_confirm_delete.html",
        {"template": template, "uses": uses},
        status=409 if request.method == "POST" else 200,
    )


def _preview_choices(user: User) -> list[tuple[str, str]]:
    """The records offered to fill the preview: the latest Contacts and Leads the user sees."""
    contacts = Contact.objects.visible_to(user).order_by("-pk")[:_PREVIEW_CHOICES]
    leads = Lead.objects.visible_to(user).filter(converted_at__isnull=True).order_by("-pk")
    return [(_person_key(c), f"Contact: {c.name}") for c in contacts] + [
        (_person_key(lead), f"Lead: {lead.name}") for lead in leads[:_PREVIEW_CHOICES]
    ]


def _person_key(person: Contact | Lead) -> str:
    return f"{'contact' if isinstance(person, Contact) else 'lead'}:{person.pk}"


def _chosen_person(user: User, key: str) -> Contact | Lead | None:
    """The record named "contact:7" / "lead:3", if the user may see it (else none: the preview
    never shows another rep's record's values)."""
    kind, _, pk = key.partition(":")
    model: Any = {"contact": Contact, "lead": Lead}.get(kind)
    if model is None or not (pk.isascii() and pk.isdigit()) or len(pk) > 18:
        return None
    related = ("account",) if model is Contact else ()
    found: Contact | Lead | None = (
        model.objects.visible_to(user).select_related(*related).filter(pk=int(pk)).first()
    )
    return found
