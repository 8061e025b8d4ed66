"""The endpoint form: where to send, which events, and whether machines' opens and clicks too."""

from typing import Any

from django import forms
from django.core.validators import URLValidator

from crm.forms import BootstrapMixin
from webhooks.models import Endpoint, EventType


class EndpointForm(BootstrapMixin, forms.ModelForm):
    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="An http or https URL. Redirects are not followed; loopback, private and "
        "link-local addresses are refused unless Setup allows them.",
    )
    events = forms.MultipleChoiceField(
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Records: contacts, leads, accounts and opportunities.",
    )

    class Meta:
        model = Endpoint
        fields = ["name", "url", "events", "include_machine"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.style_widgets()
        self.fields["events"].widget.attrs["class"] = "form-check-input"

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        if "@" in url.split("/")[2]:
            raise forms.ValidationError("A URL with a user name or password is not allowed.")
        return url
