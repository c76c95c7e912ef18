"""Keeps one current Catalog per process and tells listeners when the admin changed it.

Polling the database every RELOAD_INTERVAL seconds works the same whichever process made
the change (admin, import, another host), with one small query per process and interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from channels.db import database_sync_to_async

from . import conf
from .core.catalog import Catalog

log = logging.getLogger("zmqfeed.watch")

Listener = Callable[[Catalog], None]


class CatalogWatcher:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.catalog: Catalog | None = None
        self._listeners: set[Listener] = set()
        self._task: asyncio.Task | None = None
        self._first: asyncio.Future[Catalog] | None = None
        self.failing = False  # the last reload failed: the outage is logged once, at its start

    async def get(self) -> Catalog:
        if self.catalog is not None:
            return self.catalog
        return await asyncio.shield(self._start())

    def listen(self, listener: Listener) -> None:
        self._listeners.add(listener)

    def unlisten(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    def _start(self) -> asyncio.Future[Catalog]:
        """Starts polling once; the future holds the first catalog."""
        if self._first is None:
            self._first = asyncio.get_running_loop().create_future()
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        return self._first

    async def reload(self) -> None:
        from .models import load_catalog  # the ORM only once the apps are loaded

        catalog = await database_sync_to_async(load_catalog)()
        if catalog != self.catalog:
            first = self.catalog is None
            self.catalog = catalog
            if first and self._first is not None and not self._first.done():
                self._first.set_result(catalog)
            else:
                for listener in list(self._listeners):
                    try:
                        listener(catalog)
                    except Exception:
                        log.exception("catalog listener failed")

    async def _run(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self.interval)

    async def poll(self) -> bool:
        """One reload; the last good catalog stays when it fails. Logs once per outage."""
        try:
            await self.reload()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self.failing:
                self.failing = True
                log.warning(
                    "could not load feeds and topics: %s (the last good configuration stays; "
                    "logged again when it loads again)",
                    exc,
                )
            return False
        if self.failing:
            self.failing = False
            log.warning("configuration loads again")
        return True

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


_watchers: dict[asyncio.AbstractEventLoop, CatalogWatcher] = {}


def get_watcher() -> CatalogWatcher:
    """The watcher of the running event loop (one per process in practice)."""
    loop = asyncio.get_running_loop()
    watcher = _watchers.get(loop)
    if watcher is None:
        watcher = _watchers[loop] = CatalogWatcher(conf.get()["RELOAD_INTERVAL"])
    return watcher
