"""The API tokens page (/api/tokens/): a signed-in user lists, creates and revokes their own
personal API tokens. A new token is shown once, on the answer to its creation: only its hash
is kept."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from api import tokens
from api.models import ApiToken
from crm.forms import BootstrapMixin
from crm.views.access import current_user

EXPIRY_CHOICES = [("30", "In 30 days"), ("90", "In 90 days"), ("365", "In a year"), ("", "Never")]


class TokenForm(BootstrapMixin, forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What it is for, so you know which one to revoke later."
    )
    expires_in = forms.ChoiceField(label="Expires", choices=EXPIRY_CHOICES, required=False)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.style_widgets()


def _page(request: HttpRequest, form: TokenForm, created: str = "") -> HttpResponse:
    user_tokens = ApiToken.objects.filter(user=current_user(request), revoked_at__isnull=True)
    context = {"tokens": user_tokens, "form": form, "created": created, "now": timezone.now()}
    return render(request, "api/tokens.html", context)


@never_cache
def token_list(request: HttpRequest) -> HttpResponse:
    """The user's tokens and the form to create one (POST creates and shows it once)."""
    if request.method != "POST":
        return _page(request, TokenForm())
    form = TokenForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Please correct the errors below; no token was created.")
        return _page(request, form)
    days = form.cleaned_data["expires_in"]
    expires_at = timezone.now() + timedelta(days=int(days)) if days else None
    _, text = tokens.token_create(
        user=current_user(request), name=form.cleaned_data["name"], expires_at=expires_at
    )
    return _page(request, TokenForm(), created=text)


def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST revokes (a request with it is refused from then on)."""
    token = ApiToken.objects.filter(
        pk=pk, user=current_user(request), revoked_at__isnull=True
    ).first()
    if token is None:
        raise Http404
    if request.method == "POST":
        tokens.token_revoke(user=current_user(request), token_id=token.pk)
        messages.success(request, f"Token “{token.name}” revoked.")
        return redirect("api:tokens")
    return render(request, "api/token_confirm_revoke.html", {"token": token})
