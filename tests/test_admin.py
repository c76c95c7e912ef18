"""The admin as a staff user drives it: Django's test client against the real admin views."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
import zmq
from django.contrib.auth.models import Group, User
from django.test import Client

from zmqfeed.admin import FeedAdmin
from zmqfeed.core.catalog import TopicConfig
from zmqfeed.core.vocabulary import HISTORY_AGE_MAX, HISTORY_MAX, LAST_VALUES_MAX
from zmqfeed.models import Feed, Topic, load_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    """Logins are not what is tested here: skip a million PBKDF2 rounds per user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


ADD = "/admin/zmqfeed/feed/add/"
CHANGELIST = "/admin/zmqfeed/feed/"


# What the inline's form holds before anything is typed (history empty: HISTORY_SIZE).
TOPIC_INITIAL = {
    "match": "prefix",
    "access": "public",
    "publish_access": "nobody",
    "history": "",
    "history_age": "0",
    "last_values": "0",
}


def feed_form(endpoints: str, *, topics: list[dict[str, Any]] = (), **fields: Any) -> dict:
    """The POST of the feed add page, inline management form included."""
    data = {
        "slug": "prices",
        "name": "Prices",
        "endpoints": endpoints,
        "framing": "multipart",
        "payload": "json",
        "frames": "payload",
        "separator": " ",
        "compression": "none",
        "jupyter_connection_file": "",
        "publish_endpoints": "",
        "publish_socket": "pub",
        "enabled": "on",
        "max_message_size": "1048576",
        "topics-TOTAL_FORMS": str(len(topics)),
        "topics-INITIAL_FORMS": "0",
        "topics-MIN_NUM_FORMS": "0",
        "topics-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for index, topic in enumerate(topics):
        data.update(
            {f"topics-{index}-{key}": value for key, value in {**TOPIC_INITIAL, **topic}.items()}
        )
    return data


def errors_of(response) -> dict[str, list[str]]:
    form = response.context["adminform"].form
    return {name: list(errors) for name, errors in form.errors.items()}


def test_a_bad_endpoint_is_shown_as_a_form_error(admin_client: Client) -> None:
    response = admin_client.post(
        ADD, feed_form("tcp://127.0.0.1:5556\r\ntcp://feeds.example.com\r\nudp://h:1")
    )
    assert response.status_code == 200
    messages = [
        "'tcp://feeds.example.com': expected HOST:PORT after the scheme",
        "'udp://h:1': scheme must be one of tcp, ipc, epgm, pgm, norm, not 'udp'",
    ]
    assert errors_of(response) == {"endpoints": messages}
    page = response.content.decode()
    for message in messages:
        assert html.escape(message) in page
    assert "tcp://feeds.example.com" in page  # what was typed is kept for correcting
    assert not Feed.objects.exists()


def test_a_missing_transport_names_the_remedy(admin_client: Client) -> None:
    response = admin_client.post(ADD, feed_form("norm://239.192.1.1:5555"))
    if zmq.has("norm"):
        assert response.status_code == 302
        return
    [message] = errors_of(response)["endpoints"]
    assert "norm:// is not available" in message and "make multicast" in message


def test_a_feed_slug_of_one_of_zmqfeeds_pages_is_refused(admin_client: Client) -> None:
    response = admin_client.post(ADD, feed_form("tcp://127.0.0.1:5556", slug="metrics"))
    [message] = errors_of(response)["slug"]
    assert message.startswith("'metrics' is the address of one of zmqfeed's own pages")
    assert "reserved: healthz, logout, metrics, sse, status, token." in message
    assert not Feed.objects.exists()
    response = admin_client.post(ADD, feed_form("tcp://127.0.0.1:5556", slug="metrics-eu"))
    assert response.status_code == 302


def test_the_feed_pages_load_the_layout_css_and_the_inline_offers_values(
    admin_client: Client,
) -> None:
    """tests/test_admin_layout.py looks at the result in chromium at 1280 px."""
    feed = Feed.objects.create(slug="prices", name="Prices", endpoints=["tcp://127.0.0.1:5556"])
    Topic.objects.create(feed=feed, slug="eur", name="EUR", access="authenticated")
    for url in (CHANGELIST, f"/admin/zmqfeed/feed/{feed.pk}/change/", "/admin/zmqfeed/topic/"):
        assert "zmqfeed/admin.css" in admin_client.get(url).content.decode(), url
    page = admin_client.get(f"/admin/zmqfeed/feed/{feed.pk}/change/").content.decode()
    [select] = re.findall(r'<select name="topics-0-access".*?</select>', page, re.DOTALL)
    assert re.findall(r"<option [^>]*>([^<]*)</option>", select) == [
        "public",
        "authenticated",
        "staff",
        "group",
    ]
    assert 'value="authenticated" selected' in select
    # The topic's own page has the room for the long labels.
    page = admin_client.get(f"/admin/zmqfeed/topic/{feed.topics.get().pk}/change/").content
    assert "any logged-in user" in page.decode()


def test_a_wildcard_needs_bind(admin_client: Client) -> None:
    response = admin_client.post(ADD, feed_form("tcp://*:5556"))
    assert errors_of(response) == {
        "endpoints": [
            "'tcp://*:5556': * is for binding; to connect, give the publisher's host and port "
            "(or turn on bind)"
        ]
    }
    response = admin_client.post(ADD, feed_form("tcp://*:5556", bind="on"))
    assert response.status_code == 302
    assert Feed.objects.get(slug="prices").bind is True


def test_endpoints_are_saved_as_a_list_one_per_line(admin_client: Client) -> None:
    response = admin_client.post(
        ADD,
        feed_form(
            "  tcp://127.0.0.1:5556\r\n\r\nipc:///tmp/prices.sock  \r\n",
            topics=[{"slug": "eur", "name": "EUR", "prefix": "EUR", "access": "public"}],
        ),
    )
    assert response.status_code == 302, errors_of(response)
    feed = Feed.objects.get(slug="prices")
    assert feed.endpoints == ["tcp://127.0.0.1:5556", "ipc:///tmp/prices.sock"]
    assert list(feed.topics.values_list("slug", "prefix", "access")) == [("eur", "EUR", "public")]
    page = admin_client.get(f"/admin/zmqfeed/feed/{feed.pk}/change/").content.decode()
    assert "tcp://127.0.0.1:5556\nipc:///tmp/prices.sock</textarea>" in page


def test_a_repeated_endpoint_is_refused(admin_client: Client) -> None:
    response = admin_client.post(ADD, feed_form("tcp://127.0.0.1:5556\ntcp://127.0.0.1:5556"))
    assert errors_of(response) == {"endpoints": ["'tcp://127.0.0.1:5556' is listed twice"]}


def test_an_empty_endpoint_list_is_refused(admin_client: Client) -> None:
    response = admin_client.post(ADD, feed_form(" \r\n "))
    assert errors_of(response) == {"endpoints": ["This field is required."]}


def test_topic_inline_checks_groups_and_slugs(admin_client: Client) -> None:
    group = Group.objects.create(name="traders")
    topic = {"slug": "eur", "name": "EUR", "prefix": "EUR", "access": "group"}
    response = admin_client.post(ADD, feed_form("tcp://127.0.0.1:5556", topics=[topic]))
    assert response.status_code == 200
    [inline] = response.context["inline_admin_formsets"]
    assert inline.formset.errors == [{"groups": ['Access "group" needs at least one group.']}]

    twice = [{**topic, "groups": [group.pk]}, {**topic, "name": "EUR again", "access": "public"}]
    response = admin_client.post(ADD, feed_form("tcp://127.0.0.1:5556", topics=twice))
    assert response.status_code == 200
    [inline] = response.context["inline_admin_formsets"]
    assert "Please correct the duplicate data for slug" in str(inline.formset.non_form_errors())
    assert not Feed.objects.exists()

    response = admin_client.post(ADD, feed_form("tcp://127.0.0.1:5556", topics=twice[:1]))
    assert response.status_code == 302
    assert list(Topic.objects.get(slug="eur").groups.all()) == [group]


def make_feeds() -> list[Feed]:
    feeds = [
        Feed.objects.create(slug="a", name="A", endpoints=["tcp://127.0.0.1:5556"]),
        Feed.objects.create(slug="b", name="B", endpoints=["tcp://127.0.0.1:5557"], enabled=False),
        Feed.objects.create(slug="c", name="C", endpoints=["ipc:///tmp/c"], bind=True),
    ]
    for slug in ("x", "y"):
        Topic.objects.create(feed=feeds[0], slug=slug, name=slug.upper(), prefix=slug)
    return feeds


def test_changelist_shows_endpoints_and_topic_counts(admin_client: Client) -> None:
    make_feeds()
    column = FeedAdmin.list_display.index("topic_count") + 1
    response = admin_client.get(CHANGELIST, {"o": f"-{column}"})  # by topic count, descending
    rows = [(f.slug, f.topic_total) for f in response.context["cl"].result_list]
    assert rows[0] == ("a", 2) and sorted(rows) == [("a", 2), ("b", 0), ("c", 0)]
    page = response.content.decode()
    assert "tcp://127.0.0.1:5556" in page and "ipc:///tmp/c" in page
    assert "Enable selected feeds" in page and "Disable selected feeds" in page


@pytest.mark.parametrize(
    ("query", "slugs"),
    [
        ({"q": "5557"}, ["b"]),  # endpoints are searchable
        ({"q": "x"}, ["a"]),  # so are topic slugs and prefixes
        ({"enabled__exact": "0"}, ["b"]),
        ({"bind__exact": "1"}, ["c"]),
    ],
)
def test_changelist_search_and_filters(admin_client: Client, query: dict, slugs: list) -> None:
    make_feeds()
    response = admin_client.get(CHANGELIST, query)
    assert [f.slug for f in response.context["cl"].result_list] == slugs


@pytest.mark.parametrize(("action", "enabled"), [("enable_feeds", True), ("disable_feeds", False)])
def test_enable_and_disable_actions(admin_client: Client, action: str, enabled: bool) -> None:
    a, b, c = make_feeds()
    before = {f.pk: f.updated for f in (a, b, c)}
    response = admin_client.post(
        CHANGELIST, {"action": action, "_selected_action": [a.pk, b.pk]}, follow=True
    )
    word = "enabled" if enabled else "disabled"
    assert f"1 feed {word} (1 already {word})." in [str(m) for m in response.context["messages"]]
    states = dict(Feed.objects.values_list("slug", "enabled"))
    assert states == {"a": enabled, "b": enabled, "c": True}
    changed = a if enabled is False else b
    assert Feed.objects.get(pk=changed.pk).updated > before[changed.pk]


def test_topic_admin_lists_filters_and_requires_groups(admin_client: Client) -> None:
    a, b, _ = make_feeds()
    Topic.objects.create(feed=b, slug="z", name="Z", access="staff")
    response = admin_client.get("/admin/zmqfeed/topic/", {"feed__id__exact": a.pk})
    assert [t.slug for t in response.context["cl"].result_list] == ["x", "y"]
    response = admin_client.get("/admin/zmqfeed/topic/", {"access__exact": "staff"})
    assert [t.slug for t in response.context["cl"].result_list] == ["z"]

    data = {
        "feed": a.pk,
        "slug": "g",
        "name": "G",
        "prefix": "",
        "match": "prefix",
        "access": "group",
        "publish_access": "nobody",
        "history": "",
        "history_age": "0",
        "last_values": "0",
    }
    response = admin_client.post("/admin/zmqfeed/topic/add/", data)
    assert errors_of(response) == {"groups": ['Access "group" needs at least one group.']}
    group = Group.objects.create(name="readers")
    response = admin_client.post("/admin/zmqfeed/topic/add/", {**data, "groups": [group.pk]})
    assert response.status_code == 302
    response = admin_client.get("/admin/zmqfeed/topic/", {"q": "g"})
    assert "readers" in response.content.decode()


@pytest.mark.parametrize("url", [CHANGELIST, ADD, "/admin/zmqfeed/topic/"])
def test_only_staff_may_enter(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")
    User.objects.create_user("reader", password="pw-secret-123")
    client.login(username="reader", password="pw-secret-123")
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


def test_a_non_staff_user_cannot_run_actions(client: Client) -> None:
    a, *_ = make_feeds()
    User.objects.create_user("reader", password="pw-secret-123")
    client.login(username="reader", password="pw-secret-123")
    response = client.post(CHANGELIST, {"action": "disable_feeds", "_selected_action": [a.pk]})
    assert response.status_code == 302 and response.url.startswith("/admin/login/")
    assert Feed.objects.get(pk=a.pk).enabled is True


# Real publishers' fields


def inline_errors(response) -> list[dict[str, list[str]]]:
    [formset] = response.context["inline_admin_formsets"]
    return [dict(form.errors) for form in formset.formset.forms]


def test_a_raw_feed_refuses_a_topic_with_a_prefix_and_says_why(admin_client: Client) -> None:
    response = admin_client.post(
        ADD,
        feed_form(
            "tcp://127.0.0.1:5556",
            framing="raw",
            topics=[{"slug": "t", "name": "T", "prefix": "x"}],
        ),
    )
    assert response.status_code == 200 and not Feed.objects.exists()
    [errors] = inline_errors(response)
    assert "raw feed's messages have no topic" in errors["prefix"][0]


def test_frames_separator_and_compression_are_saved_as_given(admin_client: Client) -> None:
    response = admin_client.post(
        ADD,
        feed_form(
            "tcp://127.0.0.1:5556",
            framing="prefix",
            payload="hex",
            frames="payload, binary seq_le32",
            separator=" :: ",
            compression="zlib",
            topics=[
                {"slug": "t", "name": "T", "prefix": "10001", "match": "exact", "access": "public"}
            ],
        ),
    )
    assert response.status_code == 302, errors_of(response)
    feed = Feed.objects.get()
    assert feed.frames == ["payload", "binary", "seq_le32"]
    assert feed.separator == " :: " and feed.compression == "zlib"
    assert feed.topics.get().match == "exact"
    page = admin_client.get(f"/admin/zmqfeed/feed/{feed.pk}/change/").content.decode()
    assert 'value="payload, binary, seq_le32"' in page and 'value=" :: "' in page


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"frames": "seq_le32"}, "frames", "sequence number can only follow"),
        ({"frames": "payload, png"}, "frames", "Unknown frame kind(s) png"),
        ({"separator": ""}, "separator", "required"),
        ({"jupyter_connection_file": "/run/k.json"}, "jupyter_connection_file", "jupyter"),
    ],
)
def test_bad_real_publisher_fields_are_form_errors(
    admin_client: Client, fields: dict, field: str, says: str
) -> None:
    response = admin_client.post(ADD, feed_form("tcp://127.0.0.1:5556", **fields))
    assert response.status_code == 200 and not Feed.objects.exists()
    assert says in " ".join(errors_of(response)[field])


# A topic's history and last values


def test_the_inline_saves_history_fields_and_shows_small_number_inputs(
    admin_client: Client,
) -> None:
    topics = [
        {"slug": "eur", "name": "EUR", "prefix": "EUR", "history": "50", "history_age": "3600",
         "last_values": "1"},
        {"slug": "usd", "name": "USD", "prefix": "USD"},  # left as the form offers them
    ]  # fmt: skip
    response = admin_client.post(ADD, feed_form("tcp://127.0.0.1:5556", topics=topics))
    assert response.status_code == 302, inline_errors(response)
    feed = Feed.objects.get()
    saved = list(feed.topics.values_list("slug", "history", "history_age", "last_values"))
    assert saved == [("eur", 50, 3600, 1), ("usd", None, 0, 0)]
    assert load_catalog().topic("prices", "eur") == TopicConfig(
        "eur", "EUR", "EUR", history=50, history_age=3600, last_values=1
    )
    page = admin_client.get(f"/admin/zmqfeed/feed/{feed.pk}/change/").content.decode()
    for name, value in (("history", "50"), ("history_age", "3600"), ("last_values", "1")):
        [tag] = re.findall(rf'<input [^>]*name="topics-0-{name}"[^>]*>', page)
        # The admin's 5em number input (forms.css .vIntegerField), not a full-width text box.
        assert 'type="number"' in tag and 'class="vIntegerField"' in tag, tag
        assert f'value="{value}"' in tag and 'min="0"' in tag, tag
    assert re.search(r'<input [^>]*name="topics-1-history"(?![^>]*value=)[^>]*>', page)


@pytest.mark.parametrize(
    ("topic", "field", "says"),
    [
        ({"history": "2", "last_values": "3"}, "last_values",
         "Last_values 3 is more than the history of 2 messages kept."),
        ({"history": "0", "last_values": "1"}, "last_values",
         "Last_values 1 is more than the history of 0 messages kept."),
        ({"history": str(HISTORY_MAX + 1)}, "history",
         f"Ensure this value is less than or equal to {HISTORY_MAX}."),
        ({"history_age": str(HISTORY_AGE_MAX + 1)}, "history_age",
         f"Ensure this value is less than or equal to {HISTORY_AGE_MAX}."),
        ({"last_values": str(LAST_VALUES_MAX + 1)}, "last_values",
         f"Ensure this value is less than or equal to {LAST_VALUES_MAX}."),
        ({"history_age": "-1"}, "history_age", "Ensure this value is greater than or equal to 0."),
        ({"last_values": ""}, "last_values", "This field is required."),
    ],
)  # fmt: skip
def test_bad_history_fields_are_inline_errors(
    admin_client: Client, topic: dict, field: str, says: str
) -> None:
    topics = [{"slug": "t", "name": "T", **topic}]
    response = admin_client.post(ADD, feed_form("tcp://127.0.0.1:5556", topics=topics))
    assert response.status_code == 200 and not Feed.objects.exists()
    [errors] = inline_errors(response)
    assert errors == {field: [says]}


def test_the_topic_admin_applies_the_last_values_rule(admin_client: Client) -> None:
    [a, *_] = make_feeds()
    data = {**TOPIC_INITIAL, "feed": a.pk, "slug": "s", "name": "S"}
    response = admin_client.post("/admin/zmqfeed/topic/add/", {**data, "history": "1",
                                                                "last_values": "2"})  # fmt: skip
    assert errors_of(response) == {
        "last_values": ["Last_values 2 is more than the history of 1 message kept."]
    }
    response = admin_client.post("/admin/zmqfeed/topic/add/", {**data, "last_values": "2"})
    assert response.status_code == 302  # a null history is the server's HISTORY_SIZE
    assert Topic.objects.get(slug="s").last_values == 2


# Two-way publishing


def test_publish_endpoints_are_saved_as_a_list_one_per_line(admin_client: Client) -> None:
    topics = [{"slug": "eur", "name": "EUR", "prefix": "EUR", "publish_access": "authenticated"}]
    response = admin_client.post(
        ADD,
        feed_form(
            "tcp://127.0.0.1:5556",
            publish_endpoints="  tcp://127.0.0.1:5560\r\n\r\nipc:///tmp/prices-out.sock  \r\n",
            publish_socket="push",
            topics=topics,
        ),
    )
    assert response.status_code == 302, (errors_of(response), inline_errors(response))
    feed = Feed.objects.get(slug="prices")
    assert feed.publish_endpoints == ["tcp://127.0.0.1:5560", "ipc:///tmp/prices-out.sock"]
    assert (feed.publish_socket, feed.publish_bind) == ("push", False)
    assert feed.topics.get().publish_access == "authenticated"
    config = load_catalog().feed("prices")
    assert config is not None and config.publish_endpoints == tuple(feed.publish_endpoints)
    page = admin_client.get(f"/admin/zmqfeed/feed/{feed.pk}/change/").content.decode()
    assert "tcp://127.0.0.1:5560\nipc:///tmp/prices-out.sock</textarea>" in page
    assert "Publishing (two-way)" in page
    # The inline's publish access stands beside its access.
    access = page.index('name="topics-0-access"')
    publish = page.index('name="topics-0-publish_access"')
    assert access < publish < page.index('name="topics-0-groups"')
    [select] = re.findall(r'<select name="topics-0-publish_access".*?</select>', page, re.S)
    assert '<option value="authenticated" selected>' in select


def test_no_publish_endpoints_is_the_default(admin_client: Client) -> None:
    response = admin_client.post(ADD, feed_form("tcp://127.0.0.1:5556"))
    assert response.status_code == 302, errors_of(response)
    feed = Feed.objects.get()
    assert (feed.publish_endpoints, feed.publish_socket, feed.publish_bind) == ([], "pub", False)


@pytest.mark.parametrize(
    ("publish_endpoints", "says"),
    [
        ("udp://h:1", "'udp://h:1': scheme must be one of tcp, ipc, epgm, pgm, norm, not 'udp'"),
        ("tcp://127.0.0.1:5560\ntcp://127.0.0.1:5560", "'tcp://127.0.0.1:5560' is listed twice"),
        ("tcp://*:5560", "'tcp://*:5560': * is for binding; to connect, give the receiver's host "
         "and port (or turn on publish_bind)"),
    ],
)  # fmt: skip
def test_bad_publish_endpoints_are_form_errors(
    admin_client: Client, publish_endpoints: str, says: str
) -> None:
    # bind="on": the feed's own bind does not open the publish socket to a wildcard.
    fields = {"publish_endpoints": publish_endpoints, "bind": "on"}
    response = admin_client.post(ADD, feed_form("tcp://127.0.0.1:5556", **fields))
    assert response.status_code == 200 and not Feed.objects.exists()
    assert errors_of(response) == {"publish_endpoints": [says]}


def test_a_publish_wildcard_needs_publish_bind(admin_client: Client) -> None:
    fields = {"publish_endpoints": "tcp://*:5560", "publish_bind": "on"}
    response = admin_client.post(ADD, feed_form("tcp://127.0.0.1:5556", **fields))
    assert response.status_code == 302, errors_of(response)
    feed = Feed.objects.get()
    assert (feed.publish_endpoints, feed.publish_bind, feed.bind) == (["tcp://*:5560"], True, False)


JUPYTER_REFUSED = (
    "A Jupyter kernel signs its messages, so nothing can be published to a 'jupyter' feed: "
    "leave publish_access 'nobody'."
)


def test_a_jupyter_feed_refuses_publish_access(admin_client: Client) -> None:
    topics = [
        {"slug": "iopub", "name": "IOPub", "access": "staff"},  # nobody: fine
        {"slug": "out", "name": "Out", "access": "staff", "publish_access": "staff"},
    ]
    response = admin_client.post(
        ADD, feed_form("tcp://127.0.0.1:5556", framing="jupyter", topics=topics)
    )
    assert response.status_code == 200 and not Feed.objects.exists()
    assert inline_errors(response) == [{}, {"publish_access": [JUPYTER_REFUSED]}]
    response = admin_client.post(
        ADD, feed_form("tcp://127.0.0.1:5556", framing="jupyter", topics=topics[:1])
    )
    assert response.status_code == 302, inline_errors(response)


def test_a_feed_with_publish_access_cannot_become_jupyter(admin_client: Client) -> None:
    """The inline's topics are checked against the framing being saved, not the stored one."""
    feed = Feed.objects.create(slug="prices", name="Prices", endpoints=["tcp://127.0.0.1:5556"])
    topic = Topic.objects.create(feed=feed, slug="eur", name="EUR", publish_access="public")
    data = feed_form("tcp://127.0.0.1:5556", framing="jupyter", topics=[
        {"id": topic.pk, "feed": feed.pk, "slug": "eur", "name": "EUR", "prefix": "",
         "publish_access": "public"},
    ])  # fmt: skip
    data["topics-INITIAL_FORMS"] = "1"
    response = admin_client.post(f"/admin/zmqfeed/feed/{feed.pk}/change/", data)
    assert response.status_code == 200
    assert inline_errors(response) == [{"publish_access": [JUPYTER_REFUSED]}]
    feed.refresh_from_db()
    assert feed.framing == "multipart"


def test_the_topic_admin_applies_the_publish_rules(admin_client: Client) -> None:
    multipart = Feed.objects.create(slug="m", name="M", endpoints=["tcp://127.0.0.1:5556"])
    jupyter = Feed.objects.create(
        slug="j", name="J", endpoints=["tcp://127.0.0.1:5557"], framing="jupyter"
    )
    data = {**TOPIC_INITIAL, "slug": "s", "name": "S", "publish_access": "staff"}
    response = admin_client.post("/admin/zmqfeed/topic/add/", {**data, "feed": jupyter.pk})
    assert errors_of(response) == {"publish_access": [JUPYTER_REFUSED]}
    response = admin_client.post(
        "/admin/zmqfeed/topic/add/", {**data, "feed": multipart.pk, "publish_access": "group"}
    )
    assert errors_of(response) == {"groups": ['Publish_access "group" needs at least one group.']}
    response = admin_client.post("/admin/zmqfeed/topic/add/", {**data, "feed": multipart.pk})
    assert response.status_code == 302  # no publish endpoints yet: zmqfeed.W003 says so
    assert Topic.objects.get(slug="s").publish_access == "staff"
    response = admin_client.get("/admin/zmqfeed/topic/", {"publish_access__exact": "staff"})
    assert [t.slug for t in response.context["cl"].result_list] == ["s"]
