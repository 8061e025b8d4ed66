"""The pixel as production serves it: nginx answers and logs, the shipper puts its hits on the
stream, exactly once, through kills, partial lines, rotation and truncation."""

import io
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from mailkit.tokens import configured_keys, make_token
from tests.conftest import skip_or_fail
from tests.tracking.conftest import CHROME, free_port
from tracking import buffer, pixel_log
from tracking.fastpath import STAMP_NGINX, stamped
from tracking.ingestion import events_ingest
from tracking.models import TrackingEvent
from tracking.pixel_log import PixelLogShipper, event_from_line, nginx_parts

REQUEST_ID = "5f0c3b1e9a7d4c2b8e6f1a0d3c5b7e9f"


def line(
    token: str,
    *,
    at: float = 1796297737.671,
    method: str = "GET",
    agent: str = CHROME,
    stamp: str = "-",
) -> bytes:
    return f"{at:.3f}\t203.0.113.9\t{method}\t/t/o/{token}.gif\t{stamp}\t{agent}".encode()


def line_before_the_stamp(token: str, *, at: float = 1796297737.671, agent: str = CHROME):
    """A line of the log format before the balancer's stamp was logged (five fields)."""
    return f"{at:.3f}\t203.0.113.9\tGET\t/t/o/{token}.gif\t{agent}".encode()


def pixel_token(recipient_id: int, link_id: int = 0) -> str:
    return make_token(recipient_id, link_id, key=configured_keys()[0])


def place(offset: int = 0, *, stamps: bool = False):
    return {
        "keys": configured_keys(),
        "source": "web1",
        "inode": 7,
        "offset": offset,
        "stamps": stamps,
    }


def test_a_line_becomes_the_event_the_fast_path_would_have_buffered() -> None:
    token = pixel_token(42)
    event = event_from_line(line(token), **place())

    assert event is not None
    assert (event.kind, event.token, event.relation_id, event.link_id) == ("open", token, 42, 0)
    assert (event.ip, event.method, event.user_agent) == ("203.0.113.9", "GET", CHROME)
    assert event.received_at == pytest.approx(1796297737.671)
    assert event.event_id[:12] == f"{1796297737671:012x}"  # time first, as every event id


def test_nginx_escapes_are_undone_and_an_empty_agent_is_empty() -> None:
    token = pixel_token(42)
    escaped = rb"Mozilla \x22x\x22 \x5C \xC3\xA9\x09tab"
    raw = f"1796297737.671\t-\tHEAD\t/t/o/{token}.gif\t-\t".encode() + escaped

    event = event_from_line(raw, **place())
    assert event is not None
    assert (event.user_agent, event.ip, event.method) == ('Mozilla "x" \\ é\ttab', "", "HEAD")
    empty = event_from_line(line(token, agent="-"), **place())
    assert empty is not None and empty.user_agent == ""


@pytest.mark.parametrize(
    "raw",
    [
        line("not-a-token"),
        line(pixel_token(42, link_id=5)),  # a click's token on the pixel path
        line(pixel_token(42), method="POST"),
        line(pixel_token(42)).replace(b".gif", b".png"),
        line(pixel_token(42)).replace(b"/t/o/", b"/t/c/"),
        line(pixel_token(42)).replace(b"1796297737.671", b"soon"),
        b"garbage",
        b"",
    ],
)
def test_lines_that_record_no_open(raw: bytes) -> None:
    assert event_from_line(raw, **place()) is None


@pytest.mark.parametrize("make_line", [line, line_before_the_stamp])
def test_a_line_a_kill_cut_short_does_not_take_the_next_hit_with_it(make_line) -> None:
    """nginx killed in the middle of a line's write() (stopped at a page's edge) leaves part of
    it with no line end; the restarted nginx's next line follows on the same line."""
    cut = make_line(pixel_token(41), at=1796297737.100, agent="Mozilla/5.0 (X11) Chrome/120.0.0.0")
    whole = make_line(pixel_token(42), at=1796297737.250)
    expected = event_from_line(whole, **place())
    assert expected is not None
    for end in range(1, len(cut)):
        event = event_from_line(cut[:end] + whole, **place())
        assert event is not None, cut[:end]
        assert event._replace(event_id="") == expected._replace(event_id=""), cut[:end]


def test_a_lines_event_id_is_its_place_so_reading_it_again_makes_the_same_event() -> None:
    token = pixel_token(42)
    first = event_from_line(line(token), **place(100))
    again = event_from_line(line(token), **place(100))
    elsewhere = event_from_line(line(token), **place(200))
    assert first is not None and again is not None and elsewhere is not None
    assert first.event_id == again.event_id != elsewhere.event_id


def test_a_line_of_the_log_format_before_the_stamp_is_still_read() -> None:
    """A log nginx wrote before its configuration was updated: shipped as before."""
    token = pixel_token(42)
    old = event_from_line(line_before_the_stamp(token), **place(100))
    new = event_from_line(line(token), **place(100))

    assert old is not None and old == new


def test_two_nodes_lines_of_one_stamped_request_are_one_event() -> None:
    """The balancer retried the request on web2 after web1 had logged it (and died before
    answering): both lines are the stamp's event, the one the fast path makes of the stamp."""
    token = pixel_token(42)
    stamp = f"{REQUEST_ID} 1796297737.602"
    on_web1 = event_from_line(
        line(token, at=1796297737.603, stamp=stamp), **place(100, stamps=True)
    )
    on_web2 = event_from_line(
        line(token, at=1796297737.688, stamp=stamp),
        keys=configured_keys(), source="web2", inode=9, offset=5000, stamps=True,
    )  # fmt: skip

    assert on_web1 is not None and on_web2 is not None
    assert on_web1 == on_web2
    assert (on_web1.event_id, on_web1.received_at) == stamped(stamp, "open", token, 1796297737.6)
    # A stamp that is not one (forged, or a day off), or any stamp where Setup does not say
    # the balancer stamps, leaves the line its own place and time.
    own = event_from_line(line(token), **place(100))
    for forged in (f"{REQUEST_ID} 1796211337.602", "forged", "/t/o/x.gif"):
        assert event_from_line(line(token, stamp=forged), **place(100, stamps=True)) == own
    assert event_from_line(line(token, stamp=stamp), **place(100)) == own


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "pixel.log"


@pytest.fixture
def shipper(redis_client, log_path):
    made: list[PixelLogShipper] = []

    def make() -> PixelLogShipper:
        made.append(
            PixelLogShipper(log_path, client=redis_client, keys=configured_keys(), source="web1")
        )
        return made[-1]

    redis_client.delete(made_key(log_path))
    yield make
    for each in made:
        each.close()
    redis_client.delete(made_key(log_path))


def made_key(log_path: Path) -> str:
    return f"openrate:pixel-log:web1:{log_path}"


def write(path: Path, *lines: bytes, partial: bytes = b"") -> None:
    with path.open("ab") as log:
        log.write(b"".join(each + b"\n" for each in lines) + partial)


def shipped(redis_client) -> list[buffer.RawEvent]:
    events: list[buffer.RawEvent] = []
    for _entry, fields in redis_client.xrange(buffer.STREAM):
        events.extend(buffer._events_from_fields(fields))
    return events


def test_the_shipper_ships_complete_lines_once_and_keeps_its_place(
    shipper, log_path, redis_client
) -> None:
    ship = shipper()
    assert ship.ship_once() == 0  # no log yet: nothing, no error
    write(log_path, line(pixel_token(1)), line("bad"), partial=line(pixel_token(2))[:20])

    assert ship.ship_once() == 2
    assert [event.relation_id for event in shipped(redis_client)] == [1]
    assert ship.ship_once() == 0  # the half-written line waits for its end

    with log_path.open("ab") as log:
        log.write(line(pixel_token(2))[20:] + b"\n")
    assert ship.ship_once() == 1
    assert [event.relation_id for event in shipped(redis_client)] == [1, 2]
    place_saved = redis_client.hgetall(made_key(log_path))
    assert int(place_saved[b"offset"]) == log_path.stat().st_size


def test_a_shipper_killed_before_its_write_loses_nothing_and_ships_nothing_twice(
    shipper, log_path, redis_client, monkeypatch
) -> None:
    write(log_path, *(line(pixel_token(n)) for n in range(1, 6)))
    first = shipper()
    assert first.ship_once() == 5
    write(log_path, *(line(pixel_token(n)) for n in range(6, 9)))

    class Killed(BaseException):
        pass

    def killed(self, *args, **kwargs):
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr("redis.client.Pipeline.execute", killed)
        with pytest.raises(Killed):
            first.ship_once()
    first.close()

    second = shipper()  # a new process: its place comes from Redis
    assert second.ship_once() == 3
    assert sorted(event.relation_id for event in shipped(redis_client)) == list(range(1, 9))


def test_rotation_finishes_the_old_file_before_the_new_one(
    shipper, log_path, redis_client, monkeypatch
) -> None:
    monkeypatch.setattr(pixel_log, "ROTATION_SETTLE_SECONDS", 0.2)
    write(log_path, line(pixel_token(1)))
    ship = shipper()
    assert ship.ship_once() == 1
    rotated = log_path.with_name("pixel.log.1")
    log_path.rename(rotated)
    write(log_path, line(pixel_token(3)))  # a worker that reopened its log
    write(rotated, line(pixel_token(2)))  # one that had not yet

    assert ship.ship_once() == 1  # the old file's last line
    assert ship.ship_once() == 0  # the old file may still grow: not yet
    time.sleep(0.25)
    ship.ship_once()  # settled: moves to the new file
    assert ship.ship_once() == 1
    assert [event.relation_id for event in shipped(redis_client)] == [1, 2, 3]


def test_a_shipper_started_after_a_rotation_finishes_the_rotated_file(
    shipper, log_path, redis_client, monkeypatch
) -> None:
    monkeypatch.setattr(pixel_log, "ROTATION_SETTLE_SECONDS", 0.0)
    write(log_path, line(pixel_token(1)))
    first = shipper()
    first.ship_once()
    first.close()
    write(log_path, line(pixel_token(2)))  # written while no shipper ran
    log_path.rename(log_path.with_name("pixel.log.1"))
    write(log_path, line(pixel_token(3)))

    second = shipper()
    while second.ship_once() or len(shipped(redis_client)) < 3:
        pass
    assert [event.relation_id for event in shipped(redis_client)] == [1, 2, 3]


def test_a_log_truncated_in_place_is_read_again_from_its_start(
    shipper, log_path, redis_client
) -> None:
    write(log_path, line(pixel_token(1)), line(pixel_token(2)))
    ship = shipper()
    ship.ship_once()
    log_path.write_bytes(line(pixel_token(3)) + b"\n")  # copytruncate, then a new hit

    assert ship.ship_once() == 1
    assert [event.relation_id for event in shipped(redis_client)] == [1, 2, 3]


def start_nginx(directory: Path, http: str) -> tuple[subprocess.Popen[bytes], str]:
    """nginx with `http` (holding `{port}`) as its http block, in `directory`; (process, base
    URL) once it answers."""
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else ""
    )
    if not binary:
        skip_or_fail("nginx is not installed (Debian package nginx)")
    port = free_port()
    temp = directory / "temp"
    temp.mkdir(parents=True)
    (directory / "nginx.conf").write_text(
        f"worker_processes 2; pid {directory}/nginx.pid; error_log {directory}/error.log warn;\n"
        f"events {{ worker_connections 64; }}\n"
        f"http {{ access_log off; client_body_temp_path {temp}/b; proxy_temp_path {temp}/p;\n"
        f"fastcgi_temp_path {temp}/f; uwsgi_temp_path {temp}/u; scgi_temp_path {temp}/s;\n"
        f"{http.replace('{port}', str(port))}}}\n"
    )
    process = subprocess.Popen(
        [binary, "-p", str(directory), "-c", str(directory / "nginx.conf"), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/t/o/probe.gif", timeout=1).read()
            return process, base
        except OSError:
            time.sleep(0.05)
    process.kill()
    pytest.fail(f"nginx did not start: {process.communicate()[1].decode()}")


@pytest.fixture
def nginx(tmp_path: Path):
    """nginx serving the pixel with the configuration `ship_pixel_log --print-nginx-config`
    prints; yields (base URL, log path)."""
    log = tmp_path / "pixel.log"
    http_part, server_part = nginx_parts(log)
    process, base = start_nginx(
        tmp_path / "web", f"{http_part}\nserver {{ listen 127.0.0.1:{{port}};\n{server_part}}}\n"
    )
    try:
        yield base, log
    finally:
        process.terminate()
        process.wait(timeout=10)


class DyingNode(threading.Thread):
    """A web node that dies while answering: it passes each request on to `upstream` (nginx,
    which answers the pixel and logs the hit), then closes the balancer's connection with
    nothing sent."""

    def __init__(self, upstream: str) -> None:
        super().__init__(daemon=True)
        self.upstream = urllib.parse.urlsplit(upstream).port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests = 0

    def run(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # closed
            with connection:
                request = b""
                while b"\r\n\r\n" not in request and (chunk := connection.recv(65536)):
                    request += chunk
                self.requests += 1
                with socket.create_connection(("127.0.0.1", self.upstream)) as upstream:
                    upstream.sendall(request)  # HTTP/1.0 from the balancer: nginx closes after
                    while upstream.recv(65536):
                        pass


def test_nginx_serves_the_pixel_and_its_hits_are_stored_as_the_fast_paths_would_be(
    nginx, sent_email, redis_client, settings
) -> None:
    base, log = nginx
    request = urllib.request.Request(base + sent_email.pixel, headers={"User-Agent": CHROME})
    with urllib.request.urlopen(request, timeout=5) as response:
        body, headers = response.read(), response.headers
    assert body.startswith(b"GIF89a") and len(body) == 43
    assert headers["Content-Type"] == "image/gif"
    assert headers["Cache-Control"].startswith("no-store")
    head = urllib.request.Request(base + sent_email.pixel, method="HEAD")
    urllib.request.urlopen(head, timeout=5).read()
    forged = base + sent_email.pixel.replace(sent_email.pixel[8:14], "AAAAAA")
    assert urllib.request.urlopen(forged, timeout=5).read() == body  # the GIF, never an event

    ship = PixelLogShipper(log, client=redis_client, keys=configured_keys(), source="test")
    redis_client.delete(ship.state_key)
    try:
        assert ship.ship_once() == 4  # the probe, GET, HEAD, the forged token
    finally:
        ship.close()
        redis_client.delete(ship.state_key)
    assert events_ingest().stored == 2

    sent_email.relation.refresh_from_db()
    assert sent_email.relation.human_opens + sent_email.relation.machine_opens == 2
    stored = TrackingEvent.objects.get(method="GET")
    assert (stored.user_agent, stored.relation_id) == (CHROME, sent_email.relation.pk)
    assert settings.REDIS_URL  # the stream the fast path writes to, and ingestion reads


def test_a_hit_the_balancer_retried_after_a_node_logged_it_is_stored_once(
    nginx, sent_email, redis_client, tmp_path
) -> None:
    """nginx balancing two web nodes with README's stamp; the first logs the hit and dies before
    answering, so the balancer sends the request to the second (proxy_next_upstream): both logged
    it, one open is stored."""
    base, log = nginx
    dying = DyingNode(base)
    dying.start()
    process, balancer = start_nginx(
        tmp_path / "lb",
        f"""upstream web {{ server 127.0.0.1:{dying.port}; server {base[7:]} backup; }}
        server {{ listen 127.0.0.1:{{port}};
            location / {{ proxy_pass http://web; {STAMP_NGINX} }} }}
        """,
    )
    try:
        request = urllib.request.Request(
            balancer + sent_email.pixel, headers={"User-Agent": CHROME}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.read().startswith(b"GIF89a")
    finally:
        process.terminate()
        process.wait(timeout=10)
        dying.listener.close()
    assert dying.requests >= 1  # the first node had it, and did not answer
    hits = [each for each in log.read_bytes().splitlines() if sent_email.pixel.encode() in each]
    assert len(hits) == 2  # logged by the dying node's nginx, then by the node that answered

    ship = PixelLogShipper(
        log, client=redis_client, keys=configured_keys(), source="test", stamps=True
    )
    redis_client.delete(ship.state_key)
    try:
        ship.ship_once()
    finally:
        ship.close()
        redis_client.delete(ship.state_key)
    assert len(shipped(redis_client)) == 2
    assert events_ingest().stored == 1
    sent_email.relation.refresh_from_db()
    assert sent_email.relation.human_opens + sent_email.relation.machine_opens == 1


def test_the_command_ships_what_the_log_holds_and_prints_the_nginx_configuration(
    log_path, redis_client
) -> None:
    write(log_path, line(pixel_token(1)), line(pixel_token(2)))
    key = f"openrate:pixel-log:cmd:{log_path}"
    redis_client.delete(key)
    try:
        call_command("ship_pixel_log", str(log_path), "--source", "cmd", "--once")
        assert [event.relation_id for event in shipped(redis_client)] == [1, 2]
        call_command("ship_pixel_log", str(log_path), "--source", "cmd", "--once")
        assert len(shipped(redis_client)) == 2  # its place was kept
    finally:
        redis_client.delete(key)

    printed = io.StringIO()
    call_command(
        "ship_pixel_log", "/var/log/nginx/pixel.log", "--print-nginx-config", stdout=printed
    )
    assert "access_log /var/log/nginx/pixel.log openrate_pixel;" in printed.getvalue()
    assert "empty_gif;" in printed.getvalue()


def test_the_command_refuses_to_run_without_redis(log_path, settings) -> None:
    settings.REDIS_URL = ""
    with pytest.raises(CommandError, match="REDIS_URL"):
        call_command("ship_pixel_log", str(log_path), "--once")


def test_bytes_with_no_line_end_are_skipped_not_a_stop(shipper, log_path, redis_client) -> None:
    write(log_path, line(pixel_token(1)))
    with log_path.open("ab") as log:
        log.write(b"x" * 300)  # longer than the shipper reads at once, and no line end
    write(log_path, b"", line(pixel_token(2)))
    ship = shipper()
    ship.read_bytes = 250  # more than a line, less than the garbage

    while ship.ship_once():
        pass
    assert [event.relation_id for event in shipped(redis_client)] == [1, 2]
