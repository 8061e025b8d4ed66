"""Personal API tokens: created and shown once on the tokens page, stored hashed, revoked,
expired, and their last use noted at most once a minute."""

import hashlib
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from api.models import ApiToken
from api.tokens import token_create

ACCOUNTS = "/api/v1/accounts/"


def bearer(text: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {text}"})


def test_the_tokens_page_creates_a_token_shown_once_and_stores_only_its_hash(client_for, rep):
    client = client_for(rep)
    response = client.post(reverse("api:tokens"), {"name": "Reporting", "expires_in": "30"})
    assert response.status_code == 200
    text = response.context["created"]
    assert text.startswith("opr_") and text in response.content.decode()
    token = ApiToken.objects.get(user=rep)
    secret = text.split("_", 2)[2]
    assert token.name == "Reporting"
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {token.prefix, token.name, token.secret_hash}
    assert (
        timezone.now() + timedelta(days=29) < token.expires_at < timezone.now() + timedelta(days=31)
    )
    again = client.get(reverse("api:tokens"))
    assert "Reporting" in again.content.decode()
    assert secret not in again.content.decode()
    assert bearer(text).get(ACCOUNTS).status_code == 200


def test_the_tokens_page_lists_only_the_users_own_tokens(client_for, rep, other_rep):
    token_create(user=other_rep, name="Otto's script")
    token_create(user=rep, name="Rita's script")
    page = client_for(rep).get(reverse("api:tokens")).content.decode()
    assert "Rita&#x27;s script" in page
    assert "Otto" not in page


def test_a_token_needs_a_name(client_for, rep):
    response = client_for(rep).post(reverse("api:tokens"), {"name": "", "expires_in": ""})
    assert response.status_code == 200
    assert response.context["form"].errors["name"]
    assert not ApiToken.objects.exists()


def test_revoking_asks_first_then_refuses_the_token(client_for, rep):
    token, text = token_create(user=rep, name="Old script")
    client = client_for(rep)
    url = reverse("api:token_revoke", args=[token.pk])
    assert client.get(url).status_code == 200
    token.refresh_from_db()
    assert token.revoked_at is None
    assert client.post(url).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    refused = bearer(text).get(ACCOUNTS)
    assert refused.status_code == 401
    assert refused["Content-Type"] == "application/problem+json"
    assert list(client.get(reverse("api:tokens")).context["tokens"]) == []


def test_a_user_cannot_revoke_another_users_token(client_for, rep, other_rep):
    token, text = token_create(user=other_rep, name="Otto's")
    assert client_for(rep).post(reverse("api:token_revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert bearer(text).get(ACCOUNTS).status_code == 200


def test_an_expired_token_is_refused(rep):
    _, text = token_create(user=rep, name="Short", expires_at=timezone.now() + timedelta(days=1))
    assert bearer(text).get(ACCOUNTS).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        response = bearer(text).get(ACCOUNTS)
    assert response.status_code == 401
    assert response.json()["status"] == 401


@pytest.mark.parametrize(
    "header",
    ["Bearer opr_nothing_here", "Bearer", "Bearer a b", "Bearer ünïcode", "Bearer opr__x"],
)
def test_a_wrong_or_malformed_token_is_refused(rep, header):
    _, text = token_create(user=rep, name="Real")
    response = Client(headers={"Authorization": header}).get(ACCOUNTS)
    assert response.status_code == 401
    wrong_secret = text[:-2] + ("AA" if not text.endswith("AA") else "BB")
    assert bearer(wrong_secret).get(ACCOUNTS).status_code == 401


def test_an_inactive_users_token_is_refused(rep):
    _, text = token_create(user=rep, name="Script")
    rep.is_active = False
    rep.save(update_fields=["is_active"])
    assert bearer(text).get(ACCOUNTS).status_code == 401


def test_last_used_is_written_at_most_once_a_minute(rep):
    token, text = token_create(user=rep, name="Script")
    client = bearer(text)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.get(ACCOUNTS)
        token.refresh_from_db()
        assert token.last_used_at == start
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        client.get(ACCOUNTS)
        token.refresh_from_db()
        assert token.last_used_at == start
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        client.get(ACCOUNTS)
        token.refresh_from_db()
        assert token.last_used_at == start + timedelta(seconds=61)


def test_the_account_security_page_links_to_the_tokens_page(client_for, rep):
    page = client_for(rep).get(reverse("crm:security")).content.decode()
    assert reverse("api:tokens") in page
