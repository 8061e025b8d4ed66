"""Running wrk against a server and reading its report."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("pixels.lua")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class WrkResult:
    completed: int  # responses wrk read in full: its "N requests in Xs"
    sent: int  # requests written, including those still in flight when the run stopped
    non_2xx: int  # among `completed`
    socket_errors: int  # connect, read, write and timeout errors
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float

    @property
    def ok(self) -> int:
        """Requests wrk saw answered with a 2xx (here: 200 and the GIF)."""
        return self.completed - self.non_2xx

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def run(
    wrk: str,
    url: str,
    requests_file: Path,
    *,
    threads: int,
    connections: int,
    seconds: int,
    script_args: Sequence[str] = (),
) -> tuple[WrkResult, str]:
    """One bounded wrk run with the pixel script (`script_args` after the requests file: a
    tag); returns the parsed result and wrk's output."""
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(SCRIPT),
        url,
        "--",
        str(requests_file),
        *script_args,
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    return parse(completed.stdout), completed.stdout


def parse(output: str) -> WrkResult:
    """Read wrk's --latency report (and the script's count of requests sent)."""
    total = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)\b", output, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s*([\d.]+)", output, re.MULTILINE)
    sent = re.search(r"^bench: requests sent (\d+)", output, re.MULTILINE)
    if total is None or rate is None or sent is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    duration = float(total.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[total.group(3)]
    return WrkResult(
        completed=int(total.group(1)),
        sent=int(sent.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        seconds=duration,
        requests_per_second=float(rate.group(1)),
        p50_ms=_percentile_ms(output, "50"),
        p99_ms=_percentile_ms(output, "99"),
    )


def _percentile_ms(output: str, percentile: str) -> float:
    found = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if found is None:
        raise ValueError(f"no {percentile}% latency line in wrk output:\n{output}")
    return float(found.group(1)) * _UNIT_MS[found.group(2)]
