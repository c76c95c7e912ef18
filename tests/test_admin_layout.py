"""The admin's feed and topic pages at 1280 px, in chromium against a real daphne.

A laptop's browser window is about 1280 px wide: there the feed form and its topics table
must fit without scrolling sideways, the max-size field must show its whole value, and the
changelists' columns must not slide under the filter panel.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from zmqfeed.core.vocabulary import HISTORY_AGE_MAX, HISTORY_MAX, LAST_VALUES_MAX

from .conftest import Server, Site
from .test_browser import browser  # noqa: F401  (the module's chromium, as a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = os.environ.get("ZMQFEED_SCREENSHOTS")  # a directory: save the pages there
WIDTH, HEIGHT = 1280, 800


def topic(slug: str, name: str, prefix: str, **fields: object) -> dict:
    return {"slug": slug, "name": name, "prefix": prefix, **fields}


FEEDS = {
    "feeds": [
        {
            "slug": "market-data-eu",
            "name": "Market data, European venues",
            "endpoints": [
                "tcp://md-gateway-1.prod.example.com:5556",
                "tcp://md-gateway-2.prod.example.com:5556",
            ],
            "max_message_size": 2_147_483_647,  # the largest the field takes: all of it shows
            "publish_endpoints": ["tcp://orders.prod.example.com:5560"],
            "topics": [
                topic("eur-usd", "EUR/USD quotes", "fx.quotes.EURUSD", history=100_000),
                topic(
                    "gbp-usd",
                    "GBP/USD quotes",
                    "fx.quotes.GBPUSD",
                    access="group",
                    groups=["fx-traders", "risk"],
                    publish_access="group",
                    history_age=86_400,
                    last_values=1,
                ),
                topic("all-trades", "Every trade", "trades.", access="staff", match="prefix"),
            ],
        },
        *(
            {
                "slug": f"{name}-telemetry",
                "name": f"{name.title()} telemetry of the plant floor sensors",
                "endpoints": [f"ipc:///run/zmqfeed/{name}-telemetry-publisher.sock"],
                "bind": index % 2 == 0,
                "framing": ("multipart", "prefix", "raw")[index % 3],
                "payload": ("json", "text", "msgpack")[index % 3],
                "enabled": index != 2,
                "topics": [topic("all", "All", "")],
            }
            for index, name in enumerate(("north", "south", "east", "west"))
        ),
    ]
}


@pytest.fixture(scope="module")
def admin_site(tmp_path_factory) -> Iterator[tuple[Site, Server, str]]:
    site = Site(tmp_path_factory.mktemp("admin-layout"))
    try:
        site.configure(FEEDS)
        site.shell(
            "from django.contrib.auth.models import User\n"
            "User.objects.create_superuser('boss', 'boss@example.com', 'pw-secret-123')\n"
        )
        cookie = site.session_cookie("boss")
        yield site, site.daphne(), cookie
    finally:
        site.close()


@pytest.fixture
def admin_page(browser, admin_site) -> Iterator:  # noqa: F811  (the imported fixture)
    _site, server, cookie = admin_site
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    name, value = cookie.split("=", 1)
    context.add_cookies([{"name": name, "value": value, "url": server.http}])
    page = context.new_page()
    page.server = server
    yield page
    context.close()


def shoot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


def horizontal_overflow(page) -> int:
    """How many pixels the page is wider than the window (0: no sideways scrolling)."""
    return page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def open_admin(page, path: str) -> None:
    page.goto(f"{page.server.http}{path}")
    assert page.locator("#user-tools").count() == 1, "not logged in to the admin"


def hidden_columns(page) -> list[str]:
    """The changelist's column headers not wholly in view: past the edge of the list's scroll
    box (.results, which scrolls sideways when the table is wider), or under the filter panel
    where it stands beside them."""
    return page.evaluate(
        """() => {
            const box = document.querySelector('#changelist-form .results');
            const filter = document.querySelector('#changelist-filter');
            const f = filter && filter.getBoundingClientRect();
            let limit = Math.min(box.getBoundingClientRect().right,
                                 document.documentElement.clientWidth);
            return [...document.querySelectorAll('#result_list thead th')].filter(th => {
                const r = th.getBoundingClientRect();
                const beside = f && f.top < r.bottom && f.bottom > r.top && f.left < r.right;
                return r.right > (beside ? Math.min(limit, f.left) : limit) + 0.5;
            }).map(th => th.textContent.trim() || th.className)
              .concat(box.scrollWidth > box.clientWidth ? ['(the list scrolls sideways)'] : []);
        }"""
    )


def test_the_feed_changelist_fits_beside_the_filter(admin_page) -> None:
    open_admin(admin_page, "/admin/zmqfeed/feed/")
    assert admin_page.locator("#result_list tbody tr").count() == 5
    shoot(admin_page, "admin-feed-changelist.png")
    assert horizontal_overflow(admin_page) <= 0
    assert hidden_columns(admin_page) == []


def test_the_topic_changelist_fits_beside_the_filter(admin_page) -> None:
    open_admin(admin_page, "/admin/zmqfeed/topic/")
    assert admin_page.locator("#result_list tbody tr").count() == 7
    shoot(admin_page, "admin-topic-changelist.png")
    assert horizontal_overflow(admin_page) <= 0
    assert hidden_columns(admin_page) == []


def test_the_feed_form_with_three_topics_fits_and_shows_the_whole_max_size(admin_page) -> None:
    open_admin(admin_page, "/admin/zmqfeed/feed/")
    admin_page.get_by_role("link", name="market-data-eu").click()
    admin_page.wait_for_selector("#feed_form")
    assert admin_page.locator("#topics-group tr.has_original").count() == 3
    shoot(admin_page, "admin-feed-change.png")
    assert horizontal_overflow(admin_page) <= 0
    size = admin_page.locator("#id_max_message_size")
    assert size.input_value() == "2147483647"
    assert size.evaluate("e => e.scrollWidth <= e.clientWidth"), size.evaluate(
        "e => [e.scrollWidth, e.clientWidth]"
    )
    # The topics table: no part of it past the window, and each number field shows the
    # largest value it takes, typed in as a user would.
    table = admin_page.locator("#topics-group table")
    right = table.evaluate("e => e.getBoundingClientRect().right")
    assert right <= admin_page.evaluate("document.documentElement.clientWidth")
    for name, largest in (
        ("history", HISTORY_MAX),
        ("history_age", HISTORY_AGE_MAX),
        ("last_values", LAST_VALUES_MAX),
    ):
        field = admin_page.locator(f"#id_topics-0-{name}")
        field.fill(str(largest))
        assert field.evaluate("e => e.scrollWidth <= e.clientWidth"), (name, largest)
    shoot(admin_page, "admin-feed-change-largest.png")
    assert horizontal_overflow(admin_page) <= 0
