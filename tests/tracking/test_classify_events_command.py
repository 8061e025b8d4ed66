import io
import json

from django.core.management import call_command

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)


def run(monkeypatch, *events: object, raw: str = "", args: tuple[str, ...] = ()) -> list[dict]:
    lines = [json.dumps(event) for event in events]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n" + raw))
    out = io.StringIO()
    call_command("classify_events", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_it_prints_a_label_and_reason_per_event(monkeypatch):
    results = run(
        monkeypatch,
        {"kind": "open", "user_agent": CHROME, "ip": "198.51.100.1", "method": "GET"},
        {"kind": "click", "user_agent": GOOGLEBOT, "seconds_since_delivery": 600},
        {"kind": "click", "user_agent": CHROME, "honeypot": True},
    )

    assert results == [
        {"label": "human", "reason": "no machine signal"},
        {"label": "bot", "reason": "crawler user agent: Googlebot"},
        {"label": "scanner", "reason": "honeypot link followed"},
    ]


def test_missing_fields_take_their_defaults(monkeypatch):
    assert run(monkeypatch, {"user_agent": CHROME}) == [
        {"label": "human", "reason": "no machine signal"}
    ]


def test_it_applies_the_same_click_rules_as_ingestion(monkeypatch):
    results = run(
        monkeypatch,
        {"kind": "click", "user_agent": CHROME, "seconds_since_delivery": 2.5},
        {"kind": "click", "user_agent": CHROME, "links_clicked_same_second": 4},
    )

    assert results == [
        {"label": "scanner", "reason": "clicked 2.5 s after delivery"},
        {"label": "scanner", "reason": "clicked 4 links within one second"},
    ]


def test_the_scanner_window_option_is_honoured(monkeypatch):
    event = {"kind": "click", "user_agent": CHROME, "seconds_since_delivery": 20}

    assert run(monkeypatch, event, args=("--scanner-window", "30"))[0]["label"] == "scanner"
    assert run(monkeypatch, event)[0]["label"] == "human"


def test_a_bad_line_prints_an_error_and_the_rest_go_on(monkeypatch):
    results = run(
        monkeypatch,
        {"kind": "bounce"},
        {"kind": "click", "links_clicked_same_second": "many"},
        [1, 2],
        {"kind": "open", "user_agent": CHROME},
        raw="{not json\n",
    )

    assert results == [
        {"error": 'line 1: kind must be "open" or "click"'},
        {"error": "line 2: links_clicked_same_second must be a positive integer"},
        {"error": "line 3: expected a JSON object"},
        {"label": "human", "reason": "no machine signal"},
        {"error": "line 5: not JSON (Expecting property name enclosed in double quotes)"},
    ]
