"""Run by test_exactly_once in a process of its own: advance the due enrolments, stopping dead
(announcing READY, then sleeping until SIGKILL) at the point the test names."""

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from automation import advance  # noqa: E402


def _hang(*args: Any, **kwargs: Any) -> None:
    print("READY", flush=True)
    time.sleep(120)


def main(point: str) -> None:
    if point == "before_commit":
        # Emails, tasks and StepRuns are written; the transaction has not committed.
        write = advance._write

        def write_then_hang(*args: Any, **kwargs: Any) -> None:
            write(*args, **kwargs)
            _hang()

        advance._write = write_then_hang  # type: ignore[assignment]
    else:
        # Committed; the copies not yet handed to the mail server.
        advance.emails_hand_over = _hang  # type: ignore[assignment]
    advance.enrolments_advance()


if __name__ == "__main__":
    main(sys.argv[1])
