"""The Mailbox page's forms: the connection (tested before it is kept) and the folders."""

from __future__ import annotations

from typing import Any

from django import forms

from capture import imap
from capture.models import Mailbox
from crm.forms import BootstrapMixin
from crm.internal import parse_addresses

_NONE = {
    "sent": ("", "No sent folder (capture received mail only)"),
    "private": ("", "No private folder"),
}


class ConnectionForm(BootstrapMixin, forms.Form):
    host = forms.CharField(
        label="IMAP server", max_length=255, help_text="e.g. imap.gmail.com, outlook.office365.com"
    )
    security = forms.ChoiceField(choices=Mailbox.Security.choices, initial=Mailbox.Security.TLS)
    port = forms.IntegerField(min_value=1, max_value=65535, initial=993)
    username = forms.CharField(label="User name", max_length=255, help_text="Usually your address.")
    password = forms.CharField(
        label="App password",
        max_length=1000,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="An app password from your mail provider, not your sign-in password. It is "
        "stored encrypted and never shown again.",
    )
    other_addresses = forms.CharField(
        label="Your other addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Aliases you send from, one a line: mail between them and you is yours, not "
        "a customer's.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.style_widgets()

    def clean_host(self) -> str:
        host = self.cleaned_data["host"].strip().lower()
        if not host or any(c in host for c in "/: @"):
            raise forms.ValidationError("Enter the server's name only, e.g. imap.example.com.")
        return host

    def clean_other_addresses(self) -> str:
        text = self.cleaned_data["other_addresses"]
        _, domains, errors = parse_addresses(text)
        if domains:
            errors.append("Enter addresses, not domains.")
        if errors:
            raise forms.ValidationError(errors)
        return text

    def account(self) -> imap.Account:
        data = self.cleaned_data
        return imap.Account(
            host=data["host"],
            port=data["port"],
            username=data["username"],
            password=data["password"],
            starttls=data["security"] == Mailbox.Security.STARTTLS,
        )


class FoldersForm(BootstrapMixin, forms.Form):
    inbox = forms.ChoiceField(label="Inbox")
    sent = forms.ChoiceField(label="Sent mail", required=False)
    private = forms.ChoiceField(
        label="Private folder",
        required=False,
        help_text="Mail you file here is never captured, and removed if it was. You can also "
        "give a message the keyword $Private in your mail program.",
    )

    def __init__(self, *args: Any, mailbox: Mailbox, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "inbox": mailbox.inbox_folder,
                "sent": mailbox.sent_folder,
                "private": mailbox.private_folder,
            },
        )
        super().__init__(*args, **kwargs)
        names = list(mailbox.known_folders)
        for current in (mailbox.inbox_folder, mailbox.sent_folder, mailbox.private_folder):
            if current and current not in names:
                names.append(current)
        choices = [(name, name) for name in names]
        for name in ("inbox", "sent", "private"):
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = choices if name == "inbox" else [_NONE[name], *choices]
        self.style_widgets()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        chosen = [data.get(name) for name in ("inbox", "sent", "private") if data.get(name)]
        if len(set(chosen)) != len(chosen):
            raise forms.ValidationError("Choose a different folder for each.")
        return data
