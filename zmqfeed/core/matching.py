"""Which configured topics a ZeroMQ topic belongs to: those whose prefix it starts with, and
those whose prefix it is (``exact``).

A lookup costs one dict probe per distinct prefix length, not one comparison per topic.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable


class Matcher:
    __slots__ = ("_by_prefix", "_exact", "_lengths", "_order")

    def __init__(self, topics: Iterable[tuple[bytes, Hashable] | tuple[bytes, Hashable, bool]]):
        """``topics``: (prefix, value[, exact]) triples; ``match`` returns values in this order."""
        by_prefix: dict[bytes, list] = {}
        exact: dict[bytes, list] = {}
        order = []
        for entry in topics:
            prefix, value = entry[0], entry[1]
            (exact if len(entry) > 2 and entry[2] else by_prefix).setdefault(prefix, []).append(
                value
            )
            order.append(value)
        self._by_prefix = by_prefix
        self._exact = exact
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
        if self._exact:
            found.extend(self._exact.get(topic, ()))
        if len(found) > 1:
            found.sort(key=self._order.__getitem__)
        return tuple(found)

    @property
    def prefixes(self) -> frozenset[bytes]:
        return frozenset(self._by_prefix) | frozenset(self._exact)

    @property
    def longest(self) -> int:
        """The longest prefix: how much of a frame can decide a match."""
        return max(self._lengths, default=0)
