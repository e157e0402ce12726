"""Two small thread helpers for the streaming ingest: work overlapped in bounded memory.

Polars, pyarrow and DuckDB release the GIL while they work, so threads give real overlap on
the machine's cores; each helper keeps a fixed number of items in flight, so memory stays
bounded whatever the input size."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

_END = object()


def prefetched(items: Iterator, ahead: int = 1) -> Iterator:
    """The items of an iterator, computed one after the other in a worker thread while the caller
    uses earlier ones. At most `ahead` items are computed ahead of the one the caller holds."""
    with ThreadPoolExecutor(1, thread_name_prefix="prefetch") as pool:
        pending = deque(pool.submit(next, items, _END) for _ in range(ahead))
        while (item := pending.popleft().result()) is not _END:
            pending.append(pool.submit(next, items, _END))
            yield item


def in_order(parts: Iterator, function: Callable, workers: int = 2) -> Iterator:
    """function(part) for each part, computed by `workers` threads at once, in the parts' order.
    At most `workers` parts are being worked on."""
    with ThreadPoolExecutor(workers, thread_name_prefix="in-order") as pool:
        pending: deque = deque()
        for part in parts:
            pending.append(pool.submit(function, part))
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
