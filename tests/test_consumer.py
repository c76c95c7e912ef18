"""The consumer's two shortcuts around Channels, in process with Channels' own test client.

Both lean on how Channels runs a consumer (checked here against the installed release):
no channel-layer channel per connection (an unknown ``channel_layer_alias`` gives none), and
no hop to a thread before each handler (``dispatch`` without ``aclose_old_connections``).
"""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import channel_layers
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from zmqfeed.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)


async def _talk(monkeypatch) -> tuple[dict, int, set[str]]:
    hops = 0

    async def counting() -> None:
        nonlocal hops
        hops += 1

    monkeypatch.setattr("channels.consumer.aclose_old_connections", counting)
    layer = channel_layers["default"]
    before = set(layer.channels)
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/zmqfeed/")
    connected, _ = await communicator.connect()
    assert connected
    for _ in range(5):
        await communicator.send_json_to({"type": "ping", "id": 1})
        reply = await communicator.receive_json_from(timeout=5)
    created = set(layer.channels) - before
    await communicator.disconnect()
    for task in asyncio.all_tasks() - {asyncio.current_task()}:  # the embedded subscriber
        task.cancel()
    return reply, hops, created


def test_a_connection_has_no_channel_and_no_thread_hop_per_frame(monkeypatch):
    reply, hops, created = asyncio.run(_talk(monkeypatch))
    assert reply == {"type": "pong", "id": 1}
    assert hops == 0, "dispatch hopped to a thread per frame (Channels' own dispatch ran)"
    assert created == set(), "a channel per connection (Channels' default) came back"


async def _tasks_of_one_more_connection() -> int:
    app = URLRouter(websocket_urlpatterns)
    first = WebsocketCommunicator(app, "/ws/zmqfeed/")  # starts the process's own tasks
    assert (await first.connect())[0]
    await first.send_json_to({"type": "ping"})
    await first.receive_json_from(timeout=5)
    before = asyncio.all_tasks()
    second = WebsocketCommunicator(app, "/ws/zmqfeed/")
    assert (await second.connect())[0]
    await second.send_json_to({"type": "ping"})
    await second.receive_json_from(timeout=5)
    added = len(asyncio.all_tasks() - before)
    await second.disconnect()
    await first.disconnect()
    for task in asyncio.all_tasks() - {asyncio.current_task()}:
        task.cancel()
    return added


def test_an_open_connection_runs_in_one_task():
    """Its application's: Channels' own loop adds a task per connection that awaits
    ``receive``, with ``asyncio.wait``'s coroutines and future around it (memory)."""
    assert asyncio.run(_tasks_of_one_more_connection()) == 1


def _depth(task: asyncio.Future) -> list[str]:
    """The coroutines a connection's task holds suspended, outermost first."""
    chain, coro = [], task.get_coro()  # type: ignore[attr-defined]
    while asyncio.iscoroutine(coro):
        chain.append(coro.cr_code.co_qualname)
        coro = coro.cr_await
    return chain


async def _chain_of_an_open_connection() -> list[str]:
    from zmqfeed.routing import websocket_application

    communicator = WebsocketCommunicator(websocket_application(), "/ws/zmqfeed/")
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "ping"})
    await communicator.receive_json_from(timeout=5)
    chain = _depth(communicator.future)
    await communicator.disconnect()
    for task in asyncio.all_tasks() - {asyncio.current_task()}:
        task.cancel()
    return chain


def test_an_open_connection_holds_three_coroutines():
    """websocket_application() is one coroutine, not a stack of six, each with a scope."""
    chain = asyncio.run(_chain_of_an_open_connection())
    assert chain == ["SessionAuthRouter.__call__", "FeedConsumer.__call__", "Queue.get"]


async def _scopes(headers: list) -> list[dict]:
    from channels.generic.websocket import AsyncWebsocketConsumer
    from django.urls import path

    from zmqfeed.sessions import SessionAuthRouter, SessionAuthStack

    seen: list[dict] = []

    class Record(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            seen.append(self.scope)
            await self.close()

    routes = [path("ws/x/<slug:feed>/", Record.as_asgi(), {"extra": 1})]
    for app in (SessionAuthStack(URLRouter(routes)), SessionAuthRouter(routes)):
        communicator = WebsocketCommunicator(app, "/ws/x/abc/", headers=headers)
        await communicator.connect()
        await communicator.disconnect()
        with pytest.raises(ValueError, match="No route found"):
            await WebsocketCommunicator(app, "/ws/nowhere/").connect()
    return seen


@pytest.mark.parametrize("headers", [[], [(b"cookie", b"sessionid=nope; a=b")]])
def test_the_one_coroutine_router_fills_in_the_stacks_scope(headers):
    stack, flat = asyncio.run(_scopes(headers))
    assert set(stack) == set(flat)
    for key in ("cookies", "url_route", "path_remaining", "path", "headers"):
        assert stack[key] == flat[key], key
    assert flat["url_route"] == {"args": (), "kwargs": {"feed": "abc", "extra": 1}}
    assert stack["session"].session_key == flat["session"].session_key
    assert type(stack["session"]) is type(flat["session"])
    assert not flat["user"].is_authenticated and type(flat["user"]) is type(stack["user"])
