"""The import pages' forms: the upload, and the mapping of columns to fields."""

from __future__ import annotations

from typing import Any

from django import forms

from crm.forms import style_widgets
from crm.models import User
from imports.mapping import mapping_problems, targets
from imports.models import ImportJob


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label="Import", choices=ImportJob.Kind.choices)
    file = forms.FileField(
        label="File",
        help_text="A CSV file (comma or semicolon separated, UTF-8 or Windows-1252) or an Excel "
        "XLSX file; the first row names the columns.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].widget.attrs["accept"] = ".csv,.txt,.xlsx,text/csv"
        style_widgets(self.fields.values())


class MappingForm(forms.Form):
    """A select per column of the file, the duplicate rule and the owner of new records."""

    duplicate_rule = forms.ChoiceField(label="A row is a duplicate when it has")
    duplicate_action = forms.ChoiceField(
        label="With a duplicate", choices=ImportJob.DuplicateAction.choices
    )
    owner = forms.ModelChoiceField(
        label="Owner of new records", queryset=User.objects.none(), empty_label=None
    )

    def __init__(self, *args: Any, job: ImportJob, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.job, self.user = job, user
        fields = targets(job.kind, user)
        choices = [("", "Don't import"), *((t.name, t.label) for t in fields.values())]
        self.columns: list[tuple[str, str]] = []
        for position, column in enumerate(job.header):
            name = f"column_{position}"
            self.fields[name] = forms.ChoiceField(
                label=column, choices=choices, required=False, initial=job.mapping.get(column, "")
            )
            self.columns.append((name, column))
        rules = ImportJob.DuplicateRule.choices
        if job.kind == ImportJob.Kind.ACCOUNT:
            rules = [
                (ImportJob.DuplicateRule.NAME_ACCOUNT, "Same account name"),
                (ImportJob.DuplicateRule.NONE, ImportJob.DuplicateRule.NONE.label),
            ]
        elif job.kind == ImportJob.Kind.LEAD:
            rules = [
                (value, "Same name and company" if value == "name_account" else label)
                for value, label in rules
            ]
        rule = self.fields["duplicate_rule"]
        assert isinstance(rule, forms.ChoiceField)
        rule.choices = rules
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        owner.queryset = User.objects.filter(is_active=True).order_by("username")
        self.initial.update(
            duplicate_rule=job.duplicate_rule,
            duplicate_action=job.duplicate_action,
            owner=job.owner_id,
        )
        style_widgets(self.fields.values())

    def mapping(self) -> dict[str, str]:
        return {column: self.cleaned_data.get(name) or "" for name, column in self.columns}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        chosen = {column: name for column, name in self.mapping().items() if name}
        for problem in mapping_problems(
            chosen, self.job.kind, self.user, cleaned.get("duplicate_rule", "")
        ):
            self.add_error(None, problem)
        return cleaned
