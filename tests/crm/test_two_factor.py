"""Optional two-factor sign-in: enrol on Account security, then login asks for the code."""

import time
from base64 import b32decode
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice


def code_for(key: bytes, *, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows (steps_ahead: that many 30-second steps later,
    since a code already used is refused)."""
    totp = TOTP(key)
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


@pytest.fixture
def enrolled(rep) -> TOTPDevice:
    return TOTPDevice.objects.create(user=rep, name="Authenticator app")


def log_in(client, username: str = "rita", **extra: str):
    return client.post(reverse("login"), {"username": username, "password": "pw", **extra})


def test_a_user_enrols_with_the_qr_code_and_a_code(client_for, rep) -> None:
    client = client_for(rep)
    page = client.get(reverse("crm:security"))
    key = b32decode(page.context["secret"])

    response = client.post(reverse("crm:security_enrol"), {"code": code_for(key), "password": "pw"})

    assert page.status_code == 200
    assert page.context["qr_code"].startswith("data:image/svg+xml;base64,")
    assert response["Location"] == reverse("crm:security")
    device = TOTPDevice.objects.get(user=rep)
    assert device.confirmed and device.bin_key == key
    # The session that enrolled is verified: the admin and the page treat it as such.
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert b"Turn off two-factor" in client.get(reverse("crm:security")).content


def test_the_secret_stays_the_same_until_enrolment_is_confirmed(client_for, rep) -> None:
    client = client_for(rep)

    first = client.get(reverse("crm:security")).context["secret"]
    again = client.get(reverse("crm:security")).context["secret"]

    assert first == again
    assert not TOTPDevice.objects.exists()


def test_a_wrong_code_does_not_enrol(client_for, rep) -> None:
    client = client_for(rep)
    key = b32decode(client.get(reverse("crm:security")).context["secret"])
    wrong = f"{(int(code_for(key)) + 1) % 1_000_000:06d}"

    response = client.post(reverse("crm:security_enrol"), {"code": wrong, "password": "pw"})

    assert response.status_code == 200
    assert b"does not match" in response.content
    assert not TOTPDevice.objects.exists()


def test_login_asks_for_the_code_after_the_password(client, rep, enrolled) -> None:
    first = log_in(client, next="/contacts/")

    assert first["Location"] == reverse("login_code") + "?next=%2Fcontacts%2F"
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("home"))["Location"].startswith(reverse("login"))

    second = client.post(
        reverse("login_code"), {"code": code_for(enrolled.bin_key), "next": "/contacts/"}
    )

    assert second["Location"] == "/contacts/"
    assert client.session["_auth_user_id"] == str(rep.pk)
    assert client.session[DEVICE_ID_SESSION_KEY] == enrolled.persistent_id
    assert client.get(reverse("home")).status_code == 200


def test_a_wrong_code_fails_and_counts_as_a_failed_login(client, rep, enrolled) -> None:
    log_in(client)
    wrong = f"{(int(code_for(enrolled.bin_key)) + 1) % 1_000_000:06d}"

    response = client.post(reverse("login_code"), {"code": wrong})

    assert response.status_code == 200
    assert b"That code is not right" in response.content
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.get(username="rita").failures_since_start == 1


def test_a_locked_out_login_is_refused_at_the_code_step_too(client, rep, enrolled) -> None:
    log_in(client)
    AccessAttempt.objects.create(
        username="rita", ip_address="127.0.0.1", failures_since_start=5, user_agent=""
    )

    response = client.post(reverse("login_code"), {"code": code_for(enrolled.bin_key)})

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_code_step_expires(client, rep, enrolled) -> None:
    log_in(client)

    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        response = client.post(reverse("login_code"), {"code": code_for(enrolled.bin_key)})

    assert response["Location"].startswith(reverse("login"))
    assert "_auth_user_id" not in client.session


def test_the_code_step_without_a_password_goes_to_login(client, rep, enrolled) -> None:
    response = client.post(reverse("login_code"), {"code": code_for(enrolled.bin_key)})

    assert response["Location"].startswith(reverse("login"))


def test_a_user_without_a_device_logs_in_with_the_password_only(client, rep) -> None:
    response = log_in(client)

    assert response["Location"] == reverse("home")
    assert client.session["_auth_user_id"] == str(rep.pk)


def test_turning_it_off_needs_a_current_code(client, rep, enrolled) -> None:
    log_in(client)
    client.post(reverse("login_code"), {"code": code_for(enrolled.bin_key)})
    wrong = f"{(int(code_for(enrolled.bin_key, steps_ahead=1)) + 1) % 1_000_000:06d}"

    refused = client.post(reverse("crm:security_disable"), {"code": wrong, "password": "pw"})
    assert refused.status_code == 200 and TOTPDevice.objects.exists()

    enrolled.refresh_from_db()
    enrolled.throttle_reset()
    done = client.post(
        reverse("crm:security_disable"),
        {"code": code_for(enrolled.bin_key, steps_ahead=1), "password": "pw"},
    )

    assert done["Location"] == reverse("crm:security")
    assert not TOTPDevice.objects.exists()
    client.post(reverse("logout"))
    assert log_in(client)["Location"] == reverse("home")


def test_the_admin_asks_an_enrolled_admin_for_the_code(client_for, admin_user) -> None:
    device = TOTPDevice.objects.create(user=admin_user, name="Authenticator app")
    # A session opened without the code (before enrolling, say).
    client = client_for(admin_user)

    redirected = client.get(reverse("admin:index"))
    assert redirected["Location"] == reverse("login_code") + "?next=%2Fadmin%2F"

    verified = client.post(
        reverse("login_code"), {"code": code_for(device.bin_key), "next": "/admin/"}
    )

    assert verified["Location"] == "/admin/"
    assert client.get(reverse("admin:index")).status_code == 200


def test_the_admin_is_unchanged_for_an_admin_without_a_device(client_for, admin_user) -> None:
    assert client_for(admin_user).get(reverse("admin:index")).status_code == 200


def test_an_open_session_alone_cannot_turn_two_factor_on(client_for, rep) -> None:
    """Someone at an unattended session would lock the owner out with their own phone."""
    client = client_for(rep)
    key = b32decode(client.get(reverse("crm:security")).context["secret"])

    response = client.post(
        reverse("crm:security_enrol"), {"code": code_for(key), "password": "guess"}
    )

    assert response.status_code == 200
    assert response.context["enrol_form"].errors["password"] == ["That is not your password."]
    assert not TOTPDevice.objects.exists()


def test_turning_two_factor_on_logs_out_the_users_other_sessions(client_for, rep) -> None:
    elsewhere = client_for(rep)  # a session opened before, perhaps by someone else
    assert elsewhere.get(reverse("crm:contact_list")).status_code == 200
    client = client_for(rep)
    key = b32decode(client.get(reverse("crm:security")).context["secret"])

    client.post(reverse("crm:security_enrol"), {"code": code_for(key), "password": "pw"})

    assert client.get(reverse("crm:contact_list")).status_code == 200
    assert elsewhere.get(reverse("crm:contact_list"))["Location"].startswith(reverse("login"))


def test_turning_two_factor_off_logs_out_the_users_other_sessions(client_for, rep) -> None:
    client = client_for(rep)
    key = b32decode(client.get(reverse("crm:security")).context["secret"])
    client.post(reverse("crm:security_enrol"), {"code": code_for(key), "password": "pw"})
    rep.refresh_from_db()
    elsewhere = client_for(rep)
    assert elsewhere.get(reverse("crm:contact_list")).status_code == 200

    client.post(
        reverse("crm:security_disable"),
        {"code": code_for(key, steps_ahead=1), "password": "pw"},
    )

    assert not TOTPDevice.objects.exists()
    assert client.get(reverse("crm:contact_list")).status_code == 200
    assert elsewhere.get(reverse("crm:contact_list"))["Location"].startswith(reverse("login"))
