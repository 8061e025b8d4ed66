"""The tracking endpoints: fixed, fast answers for anything, an event only for a valid token."""

import time
from types import SimpleNamespace

import pytest
import redis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from config import wsgi
from mailkit.tokens import configured_keys
from tests.tracking.conftest import CHROME, call
from tracking.buffer import STREAM, BatchingEventWriter, EventWriter, RawEvent, _events_from_fields
from tracking.fastpath import GIF, STAMP_HEADER, LinkCache, TrackingApp, client_ip, stamped
from tracking.ingestion import events_ingest
from tracking.models import BufferedEvent, TrackingEvent


@pytest.fixture
def app(embedded, tracking_app):
    return tracking_app()


def test_the_deployed_wsgi_application_is_the_fast_path_in_front_of_django() -> None:
    assert isinstance(wsgi.application, TrackingApp)
    assert wsgi.application.fallback is wsgi.django_application
    # Opens are batched; clicks go straight to the batch's own writer, not through its queue.
    assert isinstance(wsgi.application.writer, BatchingEventWriter)
    assert wsgi.application.click_writer is wsgi.application.writer.writer


@pytest.mark.parametrize("redis_up", [True, False])
def test_a_click_is_in_redis_before_its_redirect_is_answered(
    sent_email, redis_client, redis_up
) -> None:
    """A web host killed right after answering has lost no click; an open waits in its
    worker's batch (a few milliseconds) as before, and so does a click Redis refuses (the batch's
    thread writes it to the database table: never the request)."""
    batch: list[RawEvent] = []
    client = redis_client if redis_up else redis.Redis.from_url("redis://127.0.0.1:1/0")
    app = TrackingApp(
        wsgi.django_application,
        keys=configured_keys(),
        writer=SimpleNamespace(append=batch.append),  # type: ignore[arg-type]
        click_writer=EventWriter(client),
        links=LinkCache(),
    )

    assert call(app, sent_email.click).status == 302
    in_redis = [kind for _, fields in redis_client.xrange(STREAM) for kind in _kinds(fields)]
    assert in_redis == (["click"] if redis_up else [])
    assert [event.kind for event in batch] == ([] if redis_up else ["click"])
    assert call(app, sent_email.pixel).status == 200
    assert [event.kind for event in batch][-1] == "open"
    assert not BufferedEvent.objects.exists()  # no database write from a request


def _kinds(fields: dict[bytes, bytes]) -> list[str]:
    return [event.kind for event in _events_from_fields(fields)]


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


def stamp_for(at: float, request_id: str = "5f0c3b1e9a7d4c2b8e6f1a0d3c5b7e9f") -> dict[str, str]:
    """The header the balancer adds (`fastpath.STAMP_NGINX`): its request id and its time."""
    return {STAMP_HEADER: f"{request_id} {at:.3f}", "User-Agent": CHROME}


@pytest.mark.parametrize("buffered_in", ["the database table", "Redis"])
def test_a_hit_the_balancer_retried_on_another_node_is_one_event(
    tracking_app, sent_email, settings, request, buffered_in
) -> None:
    """The balancer sends a request it retries on the next web node with the headers it sent
    the first (nginx's proxy_next_upstream): each node records the hit, one event is stored."""
    if buffered_in == "Redis":
        request.getfixturevalue("redis_client")
    else:
        settings.REDIS_URL = ""
    web1, web2 = (tracking_app(trusted_proxies=1, stamps=True) for _ in range(2))
    at = time.time() - 0.5
    for path in (sent_email.pixel, sent_email.click):
        for node in (web1, web2):
            assert call(node, path, headers=stamp_for(at)).status in (200, 302)

    result = events_ingest()

    assert (result.read, result.stored) == ((4, 2) if buffered_in == "Redis" else (2, 2))
    stored = TrackingEvent.objects.order_by("kind")
    assert [event.kind for event in stored] == ["click", "open"]
    assert [event.occurred_at.timestamp() for event in stored] == [pytest.approx(at, abs=1e-3)] * 2
    sent_email.relation.refresh_from_db()
    relation = sent_email.relation
    assert relation.human_opens + relation.machine_opens == 1
    assert relation.human_clicks + relation.machine_clicks == 1


def test_a_stamp_names_one_hit_and_anything_else_is_not_a_stamp() -> None:
    now = 1796297737.5
    request_id = "5f0c3b1e9a7d4c2b8e6f1a0d3c5b7e9f"
    identity = stamped(f"{request_id} {now - 0.25:.3f}", "open", "tokenA", now)

    assert identity is not None
    assert identity == stamped(f"{request_id} {now - 0.25:.3f}", "open", "tokenA", now + 1)
    assert identity[1] == pytest.approx(now - 0.25)
    assert identity[0][:12] == f"{int((now - 0.25) * 1000):012x}"  # time first, as every id
    # The same stamp on another token or kind is another event.
    assert stamped(f"{request_id} {now:.3f}", "open", "tokenB", now) != identity
    assert stamped(f"{request_id} {now:.3f}", "click", "tokenA", now) != identity
    # Retried after the balancer waited its whole proxy_read_timeout (60 s by default).
    assert stamped(f"{request_id} {now - 61:.3f}", "open", "tokenA", now) is not None
    for forged in [
        "",
        "-",
        request_id,
        f"{request_id} ",
        f"{request_id[:-1]} {now:.3f}",
        f"{request_id.upper()} {now:.3f}",
        f"{'g' * 32} {now:.3f}",
        f"{request_id} soon",
        f"{request_id} nan",
        f"{request_id} inf",
        f"{request_id} {now:.4f}",  # another spelling of a time: one id must be one time
        f"{request_id} 1_796_297_737.500",
        f"{request_id}  {now:.3f}",
        f"{request_id} {now:.3f} ",
        f"{request_id} {now - 301:.3f}",  # older than STAMP_MAX_AGE_SECONDS
        f"{request_id} {now + 6:.3f}",  # further ahead than STAMP_MAX_AHEAD_SECONDS
    ]:
        assert stamped(forged, "open", "tokenA", now) is None, forged


def test_a_stamp_counts_only_where_setup_says_the_balancer_stamps(
    embedded, tracking_app, sent_email
) -> None:
    """Without TRACKING_BALANCER_STAMPS a client could send one; with it, one an hour off is
    not the balancer's."""
    at = time.time() - 1
    for app in (tracking_app(), tracking_app(stamps=True)):
        call(app, sent_email.pixel, headers=stamp_for(at))
        call(app, sent_email.pixel, headers=stamp_for(at))
    call(tracking_app(stamps=True), sent_email.pixel, headers=stamp_for(time.time() - 3600))

    received = list(BufferedEvent.objects.order_by("pk").values_list("received_at", flat=True))
    # Five hits, four rows: the stamped pair is one (the table ignores an id already waiting).
    assert len(received) == 4
    assert received[2] == pytest.approx(at, abs=1e-3)  # the stamp's time
    for own in (received[0], received[1], received[3]):  # their own: now, not the stamp's
        assert abs(own - time.time()) < 30 and own != pytest.approx(at, abs=1e-3)
