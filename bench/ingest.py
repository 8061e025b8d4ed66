"""Timing ingestion: drain the whole buffer with `events_ingest`, as the Celery task does."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from tracking.services import events_ingest

BATCH_SIZE = 5000
CONSUMER = "bench"


@dataclass(frozen=True)
class DrainResult:
    read: int
    stored: int
    batches: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "events_per_second": round(self.events_per_second, 1)}


def drain(*, limit_seconds: float) -> DrainResult:
    """Call `events_ingest` until a call reads nothing (or the time limit passes)."""
    read = stored = batches = 0
    started = time.perf_counter()
    while time.perf_counter() - started < limit_seconds:
        result = events_ingest(batch_size=BATCH_SIZE, consumer=CONSUMER)
        if result.read == 0:
            break
        read += result.read
        stored += result.stored
        batches += 1
    return DrainResult(
        read=read, stored=stored, batches=batches, seconds=time.perf_counter() - started
    )
