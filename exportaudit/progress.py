"""Progress for long steps, on a terminal only (quiet and plain under cron and CI), and the
wall time of every step, recorded for the runs table and the benchmarks."""

from __future__ import annotations

import resource
import sys
import time
from contextlib import contextmanager


class Progress:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.started = time.monotonic()
        self.seconds: dict[str, float] = {}  # step -> wall seconds
        self.peak_rss_mib: dict[str, float] = {}  # step -> the process's peak RSS when the step ended

    def elapsed_seconds(self) -> float:
        """Wall seconds since the run started."""
        return time.monotonic() - self.started

    @contextmanager
    def step(self, label: str):
        started = time.monotonic()
        if self.enabled:
            print(f"  … {label}", end="", file=sys.stderr, flush=True)
        try:
            yield
        finally:
            elapsed = time.monotonic() - started
            self.seconds[label] = round(self.seconds.get(label, 0.0) + elapsed, 3)
            self.peak_rss_mib[label] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
            if self.enabled:
                print(f"\r  ✓ {label} ({elapsed:.1f} s)", file=sys.stderr, flush=True)
