"""The fast path verifies a token once and hands ingestion the ids it read from it."""

import json
import time
import uuid

import pytest

from crm.models import TrackedLink
from tests.tracking.conftest import CHROME, call
from tracking import buffer
from tracking.fastpath import event_id
from tracking.ingestion import events_ingest


def _stream_events(redis_client) -> list[buffer.RawEvent]:
    entries = redis_client.xrange(buffer.STREAM)
    return [buffer.RawEvent(*row) for _, fields in entries for row in json.loads(fields[b"batch"])]


def test_the_fast_path_writes_the_ids_it_verified_with_a_time_ordered_event_id(
    tracking_app, sent_email, redis_client
) -> None:
    app = tracking_app(client=redis_client)
    call(app, sent_email.pixel, headers={"User-Agent": CHROME})
    call(app, sent_email.click, headers={"User-Agent": CHROME})

    opened, clicked = _stream_events(redis_client)

    link = TrackedLink.objects.get(email=sent_email.email, url="https://example.com/pricing")
    assert (opened.relation_id, opened.link_id) == (sent_email.relation.pk, 0)
    assert (clicked.relation_id, clicked.link_id) == (sent_email.relation.pk, link.pk)
    assert uuid.UUID(hex=opened.event_id).version == 7
    assert int(opened.event_id[:12], 16) == pytest.approx(opened.received_at * 1000, abs=1)


def test_an_event_verified_before_its_key_was_retired_is_still_counted(
    settings, tracking_app, sent_email, redis_client
) -> None:
    app = tracking_app(client=redis_client)
    call(app, sent_email.pixel, headers={"User-Agent": CHROME})
    # An event an older version wrote carries only the token: ingestion must verify it.
    token = sent_email.pixel.removeprefix("/t/o/").removesuffix(".gif")
    buffer.EventWriter(redis_client).write(
        [buffer.RawEvent(uuid.uuid4().hex, "open", token, time.time(), "", CHROME, "GET")]
    )
    settings.TRACKING_SIGNING_KEYS = ["a key minted after the event was received"]

    assert events_ingest().stored == 1

    sent_email.relation.refresh_from_db()
    assert sent_email.relation.human_opens == 1


def test_an_event_without_ids_is_verified_and_a_forged_one_dropped(
    sent_email, redis_client
) -> None:
    token = sent_email.pixel.removeprefix("/t/o/").removesuffix(".gif")
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    now = time.time()
    buffer.EventWriter(redis_client).write(
        [
            buffer.RawEvent(uuid.uuid4().hex, "open", token, now, "", CHROME, "GET"),
            buffer.RawEvent(uuid.uuid4().hex, "open", forged, now, "", CHROME, "GET"),
        ]
    )

    assert events_ingest().stored == 1

    sent_email.relation.refresh_from_db()
    assert sent_email.relation.human_opens == 1


def test_event_ids_sort_in_the_order_they_were_made() -> None:
    ids = [event_id(1_796_000_000 + n / 1000) for n in range(0, 50, 5)]

    assert ids == sorted(ids)
    assert len({uuid.UUID(hex=i).variant for i in ids}) == 1
    assert all(len(i) == 32 for i in ids)
