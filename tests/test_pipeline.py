"""The streaming ingest's thread helpers (exportaudit.pipeline): order, bounded look-ahead, errors."""

from __future__ import annotations

import threading

import pytest

from exportaudit.pipeline import in_order, prefetched


def _counted(count: int, produced: list, fail_at: int | None = None, changed: threading.Condition | None = None):
    for item in range(count):
        if item == fail_at:
            raise RuntimeError(f"item {item} failed")
        with changed:
            produced.append(item)
            changed.notify_all()
        yield item


@pytest.mark.parametrize("ahead", [1, 2])
def test_prefetched_keeps_order_and_computes_at_most_ahead_items_ahead(ahead):
    produced, changed = [], threading.Condition()
    items = prefetched(_counted(6, produced, changed=changed), ahead=ahead)
    assert next(items) == 0
    with changed:  # the worker computes the next `ahead` items while the caller holds item 0 ...
        assert changed.wait_for(lambda: len(produced) == 1 + ahead, timeout=30)
        # ... and no more: a further item would be computed within this wait if the bound were wrong
        assert not changed.wait_for(lambda: len(produced) > 1 + ahead, timeout=0.3)
    assert list(items) == [1, 2, 3, 4, 5]


def test_prefetched_raises_an_error_where_its_item_would_have_been():
    produced, changed = [], threading.Condition()
    items = prefetched(_counted(5, produced, fail_at=2, changed=changed), ahead=2)
    assert [next(items), next(items)] == [0, 1]
    with pytest.raises(RuntimeError, match="item 2 failed"):
        next(items)


def test_in_order_gives_the_results_in_the_parts_order():
    assert list(in_order(iter(range(10)), lambda part: part * part, workers=3)) == [part * part for part in range(10)]
