"""Which configured topics a ZeroMQ topic belongs to: every topic whose prefix it starts with.

A lookup costs one dict probe per distinct prefix length, and results are cached per
ZeroMQ topic, since real feeds repeat a small set of topics at a high rate.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

CACHE_LIMIT = 50_000


class Matcher:
    __slots__ = ("_by_prefix", "_lengths", "_order", "_cache")

    def __init__(self, topics: Iterable[tuple[bytes, Hashable]]) -> None:
        """``topics``: (prefix, value) pairs; ``match`` returns the values, in this order."""
        by_prefix: dict[bytes, list] = {}
        order = []
        for prefix, value in topics:
            by_prefix.setdefault(prefix, []).append(value)
            order.append(value)
        self._by_prefix = by_prefix
        self._lengths = sorted({len(p) for p in by_prefix})
        self._order = {value: i for i, value in enumerate(order)}
        self._cache: dict[bytes, tuple] = {}

    def match(self, topic: bytes) -> tuple:
        cached = self._cache.get(topic)
        if cached is not None:
            return cached
        found: list = []
        by_prefix = self._by_prefix
        for length in self._lengths:
            if length > len(topic):
                break
            values = by_prefix.get(topic[:length])
            if values:
                found.extend(values)
        result = (
            tuple(sorted(found, key=self._order.__getitem__)) if len(found) > 1 else tuple(found)
        )
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[topic] = result
        return result
