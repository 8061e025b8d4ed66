"""The SSRF guard: only public addresses unless Setup allows private ones, checked on the
address resolved at delivery time, which is the one connected to."""

import socket

import pytest

from webhooks import network

PUBLIC = "93.184.216.34"


def _resolving_to(monkeypatch, *answers: str) -> list[str]:
    """getaddrinfo answers each call with the next address; returns the hosts asked."""
    asked: list[str] = []
    queue = list(answers)

    def fake(host, port, *args, **kwargs):
        asked.append(host)
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(network.socket, "getaddrinfo", fake)
    return asked


def _connections(monkeypatch) -> list[tuple[str, int]]:
    """Connections are recorded and refused, so nothing leaves the machine."""
    made: list[tuple[str, int]] = []

    def fake(address, *args, **kwargs):
        made.append(address)
        raise ConnectionRefusedError

    monkeypatch.setattr(socket, "create_connection", fake)
    return made


def _post(url: str, *, allow_private: bool = False) -> network.Answer:
    return network.post(url, b"{}", {}, allow_private=allow_private)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "169.254.169.254",
        "192.168.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
    ],
)
def test_it_refuses_a_host_resolving_to_a_private_address(monkeypatch, address) -> None:
    _resolving_to(monkeypatch, address)
    made = _connections(monkeypatch)
    with pytest.raises(network.Refused, match="does not allow"):
        _post("https://hooks.example.com/in")
    assert made == []


def test_an_ip_literal_is_checked_too() -> None:
    with pytest.raises(network.Refused, match="loopback"):
        _post("http://127.0.0.1:9/in")
    with pytest.raises(network.Refused, match="private"):
        _post("http://10.0.0.5/in")
    with pytest.raises(network.Refused, match="link-local"):
        _post("http://169.254.169.254/latest/meta-data")
    with pytest.raises(network.Refused):
        _post("http://[::1]/in")


def test_setup_may_allow_private_addresses(monkeypatch) -> None:
    _resolving_to(monkeypatch, "127.0.0.1")
    made = _connections(monkeypatch)
    with pytest.raises(ConnectionRefusedError):
        _post("http://hooks.internal:8080/in", allow_private=True)
    assert made == [("127.0.0.1", 8080)]


def test_a_second_dns_answer_cannot_change_the_target(monkeypatch) -> None:
    asked = _resolving_to(monkeypatch, PUBLIC, "127.0.0.1")
    made = _connections(monkeypatch)
    with pytest.raises(ConnectionRefusedError):
        _post("https://rebind.example.com/in")
    assert asked == ["rebind.example.com"]
    assert made == [(PUBLIC, 443)]


def test_any_private_answer_among_several_refuses(monkeypatch) -> None:
    def fake(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port)),
        ]

    monkeypatch.setattr(network.socket, "getaddrinfo", fake)
    with pytest.raises(network.Refused, match=r"10\.0\.0\.1"):
        _post("https://hooks.example.com/in")


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/in", "file:///etc/passwd", "gopher://x"])
def test_only_http_and_https(url) -> None:
    with pytest.raises(network.Refused, match="Only http and https"):
        _post(url, allow_private=True)


def test_the_host_header_and_sni_name_the_host_not_the_address(monkeypatch) -> None:
    _resolving_to(monkeypatch, PUBLIC)
    sent: dict[str, object] = {}

    class Socket:
        def __init__(self, address):
            sent["address"] = address

    def wrap(self, sock, server_hostname):
        sent["sni"] = server_hostname
        raise ConnectionResetError

    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: Socket(address))
    monkeypatch.setattr("ssl.SSLContext.wrap_socket", wrap)
    with pytest.raises(ConnectionResetError):
        _post("https://hooks.example.com:8443/in")
    assert sent == {"address": (PUBLIC, 8443), "sni": "hooks.example.com"}


def test_the_request_carries_the_host_name_it_was_sent_to(monkeypatch, receiver) -> None:
    port = int(receiver.url.split(":")[2].split("/")[0])
    _resolving_to(monkeypatch, "127.0.0.1")
    answer = _post(f"http://hooks.test:{port}/in?x=1", allow_private=True)
    assert answer.status == 200
    assert answer.body_start == "ok"
    [request] = receiver.received
    assert request.headers["host"] == f"hooks.test:{port}"
