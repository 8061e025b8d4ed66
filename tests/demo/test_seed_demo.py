from io import StringIO

from django.core.management import call_command

from crm.models import Account, Contact, Lead, Opportunity, Task, User
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


def test_seed_demo_is_deterministic_and_safe_to_run_twice(roles) -> None:
    _seed()
    first = sorted(Contact.objects.values_list("email", flat=True))
    ada = User.objects.get(username="ada")
    ada.set_password("changed-by-ada")
    ada.save()

    output = _seed()

    assert "already loaded" in output
    assert sorted(Contact.objects.values_list("email", flat=True)) == first
    assert User.objects.get(username="ada").check_password("changed-by-ada")
