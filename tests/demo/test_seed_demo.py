from io import StringIO

from django.core.management import call_command

from automation.models import Sequence
from crm.models import Account, Contact, EmailTemplate, Lead, Opportunity, Task, User
from mailkit.merge import unknown_fields
from privacy.models import Individual


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_loads_every_role_and_record_kind_and_prints_the_logins(roles) -> None:
    output = _seed()

    assert {u.username: u.groups.get().name for u in User.objects.all()} == {
        "admin": "Admin",
        "manager": "Sales Manager",
        "ada": "Sales Rep",
        "grace": "Sales Rep",
    }
    assert User.objects.get(username="ada").check_password("openrate-rep")
    assert "ada      password openrate-rep" in output
    assert Account.objects.count() == 10
    assert Contact.objects.count() >= 40
    assert Lead.objects.count() == 20
    assert Opportunity.objects.exists() and Task.objects.exists()
    assert Individual.objects.filter(has_opted_out_tracking=True).exists()
    assert Individual.objects.filter(has_opted_out_processing=True).exists()
    # The template library and a sequence to enrol people in, every merge field known.
    shared = EmailTemplate.objects.filter(is_private=False)
    assert shared.count() == 3 and EmailTemplate.objects.filter(is_private=True).count() == 1
    for template in EmailTemplate.objects.all():
        assert unknown_fields(template.subject + template.html_body) == [], template.name
    sequence = Sequence.objects.get()
    assert [step.kind for step in sequence.steps.order_by("position")] == [
        "email",
        "wait",
        "email",
        "wait",
        "task",
    ]


def test_seed_demo_is_deterministic_and_safe_to_run_twice(roles) -> None:
    _seed()
    first = sorted(Contact.objects.values_list("email", flat=True))
    ada = User.objects.get(username="ada")
    ada.set_password("changed-by-ada")
    ada.save()

    output = _seed()

    assert "already loaded" in output
    assert EmailTemplate.objects.count() == 4 and Sequence.objects.count() == 1
    assert sorted(Contact.objects.values_list("email", flat=True)) == first
    assert User.objects.get(username="ada").check_password("changed-by-ada")
