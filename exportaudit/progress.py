"""Progress for long steps, on a terminal only (quiet and plain under cron and CI)."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager


class Progress:
    def __init__(self, enabled: bool):
        self.enabled = enabled

    @contextmanager
    def step(self, label: str):
        if not self.enabled:
            yield
            return
        started = time.monotonic()
        print(f"  … {label}", end="", file=sys.stderr, flush=True)
        try:
            yield
        finally:
            print(f"\r  ✓ {label} ({time.monotonic() - started:.1f} s)", file=sys.stderr, flush=True)
