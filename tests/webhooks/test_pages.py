"""The webhook pages: admins only; adding, editing, a new secret shown once, disabling,
enabling, deleting, a test event, and the delivery log."""

import pytest
from django.urls import reverse

from webhooks.dispatch import deliveries_dispatch
from webhooks.events import sample_delivery_add
from webhooks.models import Attempt, Delivery, Endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(make_endpoint, receiver, private_allowed):
    return make_endpoint(receiver)


def _urls(endpoint: Endpoint, delivery: Delivery) -> list[str]:
    named = ["endpoint_detail", "endpoint_edit", "endpoint_rotate", "endpoint_delete"]
    named += ["endpoint_disable", "endpoint_enable", "endpoint_test"]
    return [
        reverse("webhooks:list"),
        reverse("webhooks:endpoint_create"),
        reverse("webhooks:delivery_detail", args=[delivery.pk]),
        *(reverse(f"webhooks:{name}", args=[endpoint.pk]) for name in named),
    ]


@pytest.mark.parametrize("persona", ["rep", "manager"])
def test_reps_and_managers_are_refused_every_page(request, persona, endpoint, client_for) -> None:
    client = client_for(request.getfixturevalue(persona))
    delivery = sample_delivery_add(endpoint)
    for url in _urls(endpoint, delivery):
        assert client.get(url).status_code == 403, url
        assert client.post(url).status_code == 403, url
    endpoint.refresh_from_db()
    assert endpoint.is_active


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(admin_user, client_for) -> None:
    client = client_for(admin_user)
    response = client.post(
        reverse("webhooks:endpoint_create"),
        {
            "name": "Warehouse",
            "url": "https://hooks.example.com/openrate",
            "events": ["email.opened", "record.created"],
            "include_machine": "on",
        },
    )
    endpoint = Endpoint.objects.get()
    assert response.status_code == 302
    assert endpoint.events == ["email.opened", "record.created"]
    assert endpoint.include_machine
    assert endpoint.owner == admin_user
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret in client.get(endpoint.get_absolute_url()).content.decode()
    assert endpoint.secret not in client.get(endpoint.get_absolute_url()).content.decode()


@pytest.mark.parametrize(
    "url, words",
    [
        ("ftp://hooks.example.com/in", "Enter a valid URL"),
        ("https://user:pw@hooks.example.com/in", "user name or password"),
    ],
)
def test_the_form_refuses_other_schemes_and_credentials(admin_user, client_for, url, words):
    response = client_for(admin_user).post(
        reverse("webhooks:endpoint_create"), {"name": "X", "url": url, "events": ["email.sent"]}
    )
    assert response.status_code == 200
    assert words in response.content.decode()
    assert not Endpoint.objects.exists()


def test_a_new_secret_needs_a_confirmation_and_is_shown_once(
    endpoint, admin_user, client_for
) -> None:
    client = client_for(admin_user)
    url = reverse("webhooks:endpoint_rotate", args=[endpoint.pk])
    old = endpoint.secret
    assert "Make a new secret" in client.get(url).content.decode()
    endpoint.refresh_from_db()
    assert endpoint.secret == old
    client.post(url)
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    page = client.get(endpoint.get_absolute_url()).content.decode()
    assert endpoint.secret in page


def test_disable_enable_and_delete(endpoint, admin_user, client_for) -> None:
    client = client_for(admin_user)
    client.post(reverse("webhooks:endpoint_disable", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert endpoint.disabled_reason == "disabled by Ada"
    client.post(reverse("webhooks:endpoint_enable", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.is_active
    url = reverse("webhooks:endpoint_delete", args=[endpoint.pk])
    assert client.get(url).status_code == 200
    assert Endpoint.objects.exists()
    client.post(url)
    assert not Endpoint.objects.exists()


def test_the_test_button_sends_a_signed_test_event(
    endpoint, receiver, admin_user, client_for, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        client_for(admin_user).post(reverse("webhooks:endpoint_test", args=[endpoint.pk]))
    [request] = receiver.received
    assert request.signature_valid
    assert request.payload["type"] == "webhook.test"
    assert request.payload["data"]["endpoint_id"] == endpoint.pk


def test_the_delivery_log_shows_each_attempt(
    endpoint, receiver, admin_user, client_for, django_assert_max_num_queries
) -> None:
    receiver.answers = [500]
    for _ in range(30):
        sample_delivery_add(endpoint)
    deliveries_dispatch()
    client = client_for(admin_user)
    with django_assert_max_num_queries(12):
        page = client.get(endpoint.get_absolute_url() + "?per_page=50").content.decode()
    # One attempt: after a failure the endpoint's other deliveries wait for the first retry.
    assert page.count("HTTP 500 in") == 1
    assert "30 deliveries" in page
    attempt = Attempt.objects.first()
    assert attempt is not None
    detail = client.get(reverse("webhooks:delivery_detail", args=[attempt.delivery_id]))
    assert "The endpoint answered 500." in detail.content.decode()


def test_the_lists_keep_their_bounds(endpoint, admin_user, client_for) -> None:
    sample_delivery_add(endpoint)
    client = client_for(admin_user)
    hostile = "?sort=-nope&sort=secret&page=-3&per_page=9999"
    for url in (reverse("webhooks:list"), endpoint.get_absolute_url()):
        assert client.get(url + hostile).status_code == 200
    assert client.post(reverse("webhooks:endpoint_create"), {"events": ["x"]}).status_code == 200
