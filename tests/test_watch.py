"""The catalog watcher keeps the last good catalog through a database outage and logs the
outage once when it starts and once when it ends, not at every reload interval."""

from __future__ import annotations

import asyncio
import logging

import pytest

from zmqfeed import models
from zmqfeed.core.catalog import Catalog, FeedConfig
from zmqfeed.watch import CatalogWatcher

A = Catalog((FeedConfig("a", "A", ("tcp://127.0.0.1:5556",)),))
B = Catalog((*A.feeds, FeedConfig("b", "B", ("tcp://127.0.0.1:5557",))))


# database_sync_to_async closes stale connections first: after other tests have opened one,
# that touches the database, which pytest-django allows only to tests marked so.
@pytest.mark.django_db
def test_an_outage_is_logged_once_the_last_catalog_stays_and_changes_follow(monkeypatch, caplog):
    state = {"catalog": A, "down": False}

    def load():
        if state["down"]:
            raise OSError("unable to open database file")
        return state["catalog"]

    monkeypatch.setattr(models, "load_catalog", load)
    seen: list[Catalog] = []

    async def main():
        watcher = CatalogWatcher(0.01)
        assert await watcher.poll()
        assert watcher.catalog == A
        watcher.listen(seen.append)
        caplog.clear()
        with caplog.at_level(logging.INFO, "zmqfeed.watch"):
            state["down"] = True
            for _ in range(5):
                assert not await watcher.poll()
            assert watcher.catalog == A  # the last good one stays
            state["catalog"] = B  # changed while the database was away
            state["down"] = False
            assert await watcher.poll()
            assert await watcher.poll()
            state["down"] = True
            assert not await watcher.poll()
            assert not await watcher.poll()
        return watcher

    watcher = asyncio.run(main())
    messages = [r.getMessage() for r in caplog.records if r.name == "zmqfeed.watch"]
    assert len(messages) == 3, messages
    assert messages[0].startswith("could not load feeds and topics: unable to open database")
    assert messages[1] == "configuration loads again"
    assert messages[2].startswith("could not load feeds and topics")
    assert watcher.catalog == B and seen == [B]  # picked up once it loads again
