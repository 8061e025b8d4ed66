"""The fast path's batching writer: one write per batch under load, no wake-up while idle."""

import time
from collections.abc import Callable, Sequence

import pytest

from tracking.buffer import BatchingEventWriter, EventWriter, RawEvent


class _Recorder(EventWriter):
    """Keeps each write instead of sending it."""

    def __init__(self) -> None:
        super().__init__(None)
        self.writes: list[list[RawEvent]] = []

    def write(self, events: Sequence[RawEvent]) -> None:
        self.writes.append(list(events))


def _event(n: int) -> RawEvent:
    return RawEvent(
        f"{n:032x}", "open", "token", 1_790_000_000.0, "203.0.113.9", "Mozilla/5.0", "GET"
    )


def _within(seconds: float, condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def test_an_appended_event_is_sent_within_milliseconds() -> None:
    recorder = _Recorder()
    writer = BatchingEventWriter(recorder)
    writer.append(_event(1))
    assert _within(0.5, lambda: recorder.writes == [[_event(1)]])


def test_a_burst_of_events_goes_out_in_a_few_writes_not_one_per_event() -> None:
    recorder = _Recorder()
    writer = BatchingEventWriter(recorder)
    for n in range(200):
        writer.append(_event(n))
    assert _within(0.5, lambda: sum(len(write) for write in recorder.writes) == 200)
    assert len(recorder.writes) <= 5
    assert [event for write in recorder.writes for event in write] == [
        _event(n) for n in range(200)
    ]


def test_an_idle_writer_thread_does_not_wake_until_the_next_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = _Recorder()
    writer = BatchingEventWriter(recorder)
    wakes: list[float] = []
    flush = writer.flush

    def counted_flush() -> None:
        wakes.append(time.monotonic())
        flush()

    monkeypatch.setattr(writer, "flush", counted_flush)
    writer.append(_event(1))
    assert _within(0.5, lambda: len(recorder.writes) == 1)
    time.sleep(0.01)  # the batch's flush has returned
    woken = len(wakes)

    time.sleep(0.05)  # the old writer woke every 2 ms: 25 times here

    assert len(wakes) == woken
    writer.append(_event(2))
    assert _within(0.5, lambda: len(recorder.writes) == 2)
    assert recorder.writes[1] == [_event(2)]


def test_a_normal_stop_sends_what_is_still_queued() -> None:
    recorder = _Recorder()
    writer = BatchingEventWriter(recorder)
    writer._queue.extend([_event(1), _event(2)])  # queued, the thread not started yet

    writer.flush()  # what atexit calls

    assert recorder.writes == [[_event(1), _event(2)]]


def test_after_redis_refuses_one_caller_at_a_time_tries_it_again(monkeypatch) -> None:
    """A click waits for Redis only when it is the one trying: while Redis is down, one request
    per cool-off pays the timeout, not every request that arrives meanwhile."""
    import redis

    from tracking import buffer

    clock = [100.0]
    monkeypatch.setattr(buffer.time, "monotonic", lambda: clock[0])
    tries: list[bool] = []
    meanwhile: list[bool] = []

    class Redis:
        up = False

        def xadd(self, *args, **kwargs) -> None:
            tries.append(True)
            if len(tries) == 2:  # another request while this one waits on Redis
                meanwhile.append(writer.write_now([_event(3)]))
            if not self.up:
                raise redis.ConnectionError("down")

    client = Redis()
    writer = EventWriter(client)  # type: ignore[arg-type]
    assert writer.write_now([_event(1)]) is False
    assert writer.write_now([_event(2)]) is False  # cooling off: not tried
    assert len(tries) == 1

    clock[0] += buffer.REDIS_COOL_OFF_SECONDS
    assert writer.write_now([_event(4)]) is False  # this one tried, and Redis was still down
    assert (len(tries), meanwhile) == (2, [False])  # the other did not try

    clock[0] += buffer.REDIS_COOL_OFF_SECONDS
    client.up = True
    assert writer.write_now([_event(5)]) is True
    assert writer.write_now([_event(6)]) is True  # back: every write goes to Redis again
    assert len(tries) == 4
