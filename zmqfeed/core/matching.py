"""Which configured topics a ZeroMQ topic belongs to: every topic whose prefix it starts with.

A lookup costs one dict probe per distinct prefix length, not one comparison per topic.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable


class Matcher:
    __slots__ = ("_by_prefix", "_lengths", "_order")

    def __init__(self, topics: Iterable[tuple[bytes, Hashable]]) -> None:
        """``topics``: (prefix, value) pairs; ``match`` returns the values in this order."""
        by_prefix: dict[bytes, list] = {}
        order = []
        for prefix, value in topics:
            by_prefix.setdefault(prefix, []).append(value)
            order.append(value)
        self._by_prefix = by_prefix
        self._lengths = sorted({len(p) for p in by_prefix})
        self._order = {value: i for i, value in enumerate(order)}

    def match(self, topic: bytes) -> tuple:
        found: list = []
        by_prefix = self._by_prefix
        for length in self._lengths:
            if length > len(topic):
                break
            values = by_prefix.get(topic[:length])
            if values:
                found.extend(values)
        if len(found) > 1:
            found.sort(key=self._order.__getitem__)
        return tuple(found)

    @property
    def prefixes(self) -> frozenset[bytes]:
        return frozenset(self._by_prefix)
