"""The tracking endpoints: fixed, fast answers for anything, an event only for a valid token."""

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from config import wsgi
from tests.tracking.conftest import CHROME, call
from tracking.fastpath import GIF, TrackingApp, client_ip
from tracking.models import BufferedEvent


@pytest.fixture
def app(embedded, tracking_app):
    return tracking_app()


def test_the_deployed_wsgi_application_is_the_fast_path_in_front_of_django() -> None:
    assert isinstance(wsgi.application, TrackingApp)
    assert wsgi.application.fallback is wsgi.django_application


def test_the_pixel_answers_the_43_byte_gif_uncached_and_records_an_open(app, sent_email) -> None:
    response = call(app, sent_email.pixel, headers={"User-Agent": CHROME})

    assert (response.status, response.body, len(response.body)) == (200, GIF, 43)
    assert response.headers["Content-Type"] == "image/gif"
    assert "no-store" in response.headers["Cache-Control"]
    assert "Set-Cookie" not in response.headers
    (event,) = BufferedEvent.objects.all()
    assert (event.kind, event.method, event.ip, event.user_agent) == (
        "open",
        "GET",
        "198.51.100.7",
        CHROME,
    )


def test_a_click_redirects_to_the_stored_destination(app, sent_email) -> None:
    response = call(app, sent_email.click)

    assert response.status == 302
    assert response.headers["Location"] == "https://example.com/pricing"
    assert BufferedEvent.objects.get().kind == "click"


def test_head_requests_are_answered_and_recorded_for_classification(app, sent_email) -> None:
    pixel = call(app, sent_email.pixel, method="HEAD")
    click = call(app, sent_email.click, method="HEAD")

    assert (pixel.status, pixel.body, click.status) == (200, b"", 302)
    assert set(BufferedEvent.objects.values_list("method", flat=True)) == {"HEAD"}


@pytest.mark.parametrize(
    "token",
    [
        "AAAAAAAAAAAAAAAAAAAAAA",  # forged
        "x",  # truncated
        "%%%garbled%%%",
        "A" * 5000,  # over-long
        "ÄÖÜ-non-ascii",
        "",
    ],
)
def test_a_bad_pixel_token_still_gets_the_gif_and_records_nothing(app, sent_email, token) -> None:
    response = call(app, f"/t/o/{token}.gif")

    assert (response.status, response.body) == (200, GIF)
    assert not BufferedEvent.objects.exists()


def test_a_forged_click_token_gets_a_404_page_and_no_redirect(app, sent_email) -> None:
    forged = sent_email.click[:-3] + ("AAA" if not sent_email.click.endswith("AAA") else "BBB")

    response = call(app, forged)

    assert response.status == 404
    assert "Location" not in response.headers
    assert b"This link is not valid" in response.body
    assert not BufferedEvent.objects.exists()


def test_a_pixel_token_used_as_a_click_is_not_a_redirect(app, sent_email) -> None:
    pixel_token = sent_email.pixel.removeprefix("/t/o/").removesuffix(".gif")

    assert call(app, f"/t/c/{pixel_token}").status == 404


@pytest.mark.parametrize("path", ["/t/", "/t/x/abc", "/t/c/", "/t/o/", "/t/c/../../admin"])
def test_unknown_paths_under_t_get_a_fixed_answer(app, path) -> None:
    response = call(app, path)

    assert response.status in (200, 404)
    assert "Location" not in response.headers


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "TRACE", "BREW"])
def test_odd_methods_get_405(app, sent_email, method) -> None:
    response = call(app, sent_email.pixel, method=method)

    assert response.status == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert not BufferedEvent.objects.exists()


def test_a_header_flood_is_answered_and_the_user_agent_is_capped(app, sent_email) -> None:
    headers = {f"X-Flood-{i}": "y" * 1000 for i in range(500)} | {"User-Agent": "z" * 100_000}

    response = call(app, sent_email.pixel, headers=headers)

    assert response.status == 200
    assert len(BufferedEvent.objects.get().user_agent) == 512


def test_other_paths_go_to_django(app, db) -> None:
    response = call(app, "/login/", headers={"Host": "testserver"})

    assert response.status == 200
    assert b"Log in" in response.body


def test_the_endpoint_never_fails_when_the_buffer_does(
    tracking_app, sent_email, embedded, monkeypatch
) -> None:
    app = tracking_app()

    def broken(event):
        raise RuntimeError("disk full")

    monkeypatch.setattr(app.writer, "append", broken)

    assert call(app, sent_email.pixel).status == 200
    assert call(app, sent_email.click).status == 404  # no redirect it cannot vouch for


def test_when_redis_is_down_events_go_to_the_database_table(
    tracking_app, sent_email, settings
) -> None:
    import redis

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    app = tracking_app(client=redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.2))

    first, second = call(app, sent_email.pixel), call(app, sent_email.click)

    assert (first.status, second.status) == (200, 302)
    assert BufferedEvent.objects.count() == 2


@pytest.mark.parametrize(
    "remote,forwarded,proxies,expected",
    [
        ("203.0.113.9", "", 0, "203.0.113.9"),
        ("10.0.0.2", "198.51.100.1, 203.0.113.5", 1, "203.0.113.5"),
        ("10.0.0.2", "spoofed, 198.51.100.1, 203.0.113.5", 2, "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1", 0, "10.0.0.2"),
        ("not-an-ip", "", 0, ""),
    ],
)
def test_the_client_ip_follows_the_trusted_proxy_rule(remote, forwarded, proxies, expected) -> None:
    environ = {"REMOTE_ADDR": remote, "HTTP_X_FORWARDED_FOR": forwarded}

    assert client_ip(environ, proxies) == expected


@hsettings(
    max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(tail=st.text(max_size=200), method=st.sampled_from(["GET", "HEAD", "POST", "X"]))
def test_no_path_under_t_raises_or_redirects(app, db, tail, method) -> None:
    for prefix in ("/t/o/", "/t/c/", "/t/"):
        response = call(app, prefix + tail, method=method)

        assert response.status in (200, 404, 405)
        assert "Location" not in response.headers
