"""The email composer on a Contact's or Lead's page: it sends through crm.sending."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from crm import forms
from crm.models import (
    Contact,
    EmailMessageRelation,
    EmailSuppression,
    EmailTemplate,
    Lead,
)
from crm.sending import SendRefused, email_send
from crm.views.access import current_user, get_record_for_user
from mailkit.display import editable_html


@permission_required("crm.add_emailmessage", raise_exception=True)
def email_compose(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Write an email to a Contact or Lead (and anyone else); it is sent by a Celery task."""
    model: type[Contact] | type[Lead] = Contact if kind == "contact" else Lead
    person = get_record_for_user(model, request, pk, "individual")
    user = current_user(request)
    form = forms.EmailComposeForm(request.POST or None, initial={"to": person.email})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data

        def recipients(addresses: list[str]) -> list[Contact | Lead | str]:
            # The person the email is written to is named as that record, not matched by address.
            return [person if a.lower() == person.email.lower() else a for a in addresses]

        try:
            if not user.email:
                raise SendRefused("Your user has no email address to send from; ask an admin.")
            email = email_send(
                sender=user,
                to=recipients(data["to"]),
                cc=recipients(data["cc"]),
                bcc=recipients(data["bcc"]),
                subject=data["subject"],
                html_body=data["html_body"],
                related_to=person.account if isinstance(person, Contact) else None,
            )
        except SendRefused as refused:
            form.add_error(None, str(refused))
        else:
            refused_rows = email.relations.filter(
                delivery_status=EmailMessageRelation.Delivery.REFUSED
            ).values_list("address", "refusal_reason")
            notes = "; ".join(
                f"not sent to {address} ({reason})" for address, reason in refused_rows
            )
            messages.success(request, "Email queued." + (f" Note: {notes}." if notes else ""))
            return redirect(email)
    templates = {
        str(t.pk): {"subject": t.subject, "html_body": editable_html(t.html_body)}
        for t in EmailTemplate.objects.filter(is_active=True)
    }
    suppression = EmailSuppression.objects.filter(address=person.email.lower()).first()
    context = {
        "form": form,
        "person": person,
        "templates": templates,
        "body": editable_html(form["html_body"].value() or ""),
        "bounce_alert": person.email_bounced_reason or (suppression.detail if suppression else ""),
    }
    return render(request, "crm/email_compose.html", context)
