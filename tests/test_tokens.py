"""Tokens (signed, expiring, revocable), the auth request, and who a connection is."""

from __future__ import annotations

import io

import orjson
import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from zmqfeed import identity, tokens
from zmqfeed.core.access import ANONYMOUS, Reader
from zmqfeed.core.catalog import Catalog, FeedConfig, TopicConfig
from zmqfeed.core.session import Authenticate, ClientSession, Limits, Replay, Send
from zmqfeed.models import TokenGeneration


def test_a_token_names_its_user_generation_and_expiry():
    value = tokens.issue(7, 3, ttl=60, now=1000.0)
    claims = tokens.read(value, now=1059.0)
    assert (claims.user_id, claims.generation, claims.expires) == (7, 3, 1060.0)
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


@pytest.mark.parametrize(
    ("mangle", "says"),
    [
        (lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), "signature"),
        (lambda t: "eyJ1Ijo5OTksImciOjAsIngiOjk5OTk5OTk5OTk5fQ" + t[t.index(".") :], "signature"),
        (lambda t: t.replace(".", ""), "signature"),
        (lambda t: "", "not a token"),
        (lambda t: t * 10, "not a token"),
    ],
    ids=["tampered-signature", "other-claims", "no-separator", "empty", "too-long"],
)
def test_forged_or_malformed_tokens_are_refused(mangle, says):
    with pytest.raises(tokens.TokenError, match=says):
        tokens.read(mangle(tokens.issue(1, 0)))


def test_an_expired_token_is_refused():
    value = tokens.issue(1, 0, ttl=10, now=1000.0)
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.read(value, now=1010.0)


def test_another_secret_key_does_not_read_our_tokens():
    value = tokens.issue(1, 0)
    with (
        override_settings(SECRET_KEY="another-site-entirely-0123456789"),
        pytest.raises(tokens.TokenError),
    ):
        tokens.read(value)


@pytest.mark.parametrize("ttl", [0, -1, tokens.MAX_TTL + 1])
def test_a_ttl_out_of_range_is_refused_when_issued(ttl):
    with pytest.raises(ValueError):
        tokens.issue(1, 0, ttl=ttl)


@given(st.one_of(st.text(max_size=700), st.binary(max_size=100), st.integers(), st.none()))
def test_any_input_is_claims_or_a_token_error(value):
    try:
        claims = tokens.read(value)
    except tokens.TokenError as exc:
        assert str(exc) in {
            "not a token",
            "the token's signature does not match",
            "the token has expired",
        }
    else:
        assert isinstance(claims, tokens.Claims)


def test_the_handshake_carries_a_token_in_a_subprotocol_or_a_bearer_header_only():
    assert tokens.from_scope({"subprotocols": ["zmqfeed", "zmqfeed.token.abc"]}) == "abc"
    assert tokens.from_scope({"headers": [(b"authorization", b"Bearer  xyz ")]}) == "xyz"
    assert tokens.from_scope({"headers": [(b"authorization", b"Basic dXNlcg==")]}) is None
    assert tokens.from_scope({"path": "/ws/zmqfeed/", "query_string": b"token=abc"}) is None


# The auth request, in the session


CATALOG = Catalog(
    (FeedConfig("f", "F", ("tcp://x:1",), topics=(TopicConfig("s", "S", "", "staff"),)),)
)


def test_an_auth_frame_asks_the_shell_then_the_user_reads_more():
    s = ClientSession(ANONYMOUS, Limits())
    s.receive(CATALOG, '{"type":"auth","token":"t0k","id":4}')
    assert s.actions_to_do() == [Authenticate("t0k", 4)]
    s.authenticated(Reader(authenticated=True, staff=True), 99.0, 4)
    [reply] = s.actions_to_do()
    assert orjson.loads(reply.text) == {"type": "authenticated", "expires": 99.0, "id": 4}
    s.receive(CATALOG, '{"type":"subscribe","feed":"f","topic":"s"}')
    assert s.actions_to_do()[0].__class__.__name__ == "Join"


def test_a_failed_auth_is_a_forbidden_error_and_changes_nothing():
    s = ClientSession(ANONYMOUS, Limits())
    s.auth_failed("the token has expired", 2)
    [error] = s.actions_to_do()
    assert isinstance(error, Send) and error.error == "forbidden"
    assert orjson.loads(error.text)["detail"] == "the token has expired"
    assert s.reader == ANONYMOUS


@pytest.mark.parametrize(
    "frame", ['{"type":"auth"}', '{"type":"auth","token":5}', '{"type":"auth","token":""}']
)
def test_an_auth_frame_without_a_token_string_is_a_bad_request(frame):
    s = ClientSession(ANONYMOUS, Limits())
    s.receive(CATALOG, frame)
    assert [a.error for a in s.actions_to_do()] == ["bad_request"]


def test_a_reader_that_loses_access_loses_its_subscriptions():
    s = ClientSession(Reader(authenticated=True, staff=True), Limits())
    s.receive(CATALOG, '{"type":"subscribe","feed":"f","topic":"s"}')
    s.actions_to_do()
    s.joined("f", "s", Replay(0, [], 1))
    s.actions_to_do()
    s.set_reader(ANONYMOUS, CATALOG)
    kinds = [orjson.loads(a.text)["type"] for a in s.actions_to_do() if isinstance(a, Send)]
    assert kinds == ["error", "unsubscribed"]


# Who a connection is, from the database


@pytest.mark.django_db
def test_readers_follow_users_groups_tokens_and_sessions():
    from django.contrib.sessions.backends.db import SessionStore

    ann = User.objects.create_user("ann", is_staff=True)
    ann.groups.add(Group.objects.create(name="desk"))
    bob = User.objects.create_user("bob", is_active=False)
    session = SessionStore()
    session.create()
    good = identity.Identity(ann.pk, token=tokens.read(tokens.issue(ann.pk, 0)))
    stale = identity.Identity(ann.pk, token=tokens.read(tokens.issue(ann.pk, 0)), session_key=None)
    live = identity.Identity(ann.pk, session_key=session.session_key)
    gone = identity.Identity(ann.pk, session_key="no-such-session-key")
    inactive = identity.Identity(bob.pk, session_key=session.session_key)
    found = identity.readers([good, live, gone, inactive, identity.NOBODY])
    assert found[good] == Reader(authenticated=True, staff=True, groups=frozenset({"desk"}))
    assert found[live] == found[good]
    assert found[gone] is ANONYMOUS and found[inactive] is ANONYMOUS
    assert found[identity.NOBODY] is ANONYMOUS
    assert TokenGeneration.revoke(ann.pk) == 1
    assert identity.readers([stale])[stale] is ANONYMOUS


@pytest.mark.django_db
def test_readers_take_a_few_queries_for_many_connections(django_assert_max_num_queries):
    users = [User.objects.create_user(f"u{i}") for i in range(50)]
    many = [identity.Identity(u.pk, token=tokens.read(tokens.issue(u.pk, 0))) for u in users]
    with django_assert_max_num_queries(4):
        found = identity.readers(many)
    assert all(r.authenticated for r in found.values())


# Issuing and revoking


@pytest.mark.django_db
def test_zmq_token_prints_a_token_and_revokes_them():
    user = User.objects.create_user("prog")
    out = io.StringIO()
    call_command("zmq_token", "prog", "--ttl", "30", stdout=out)
    claims = tokens.read(out.getvalue().strip())
    assert claims.user_id == user.pk and claims.generation == 0
    call_command("zmq_token", "prog", "--revoke", stdout=io.StringIO(), stderr=io.StringIO())
    assert TokenGeneration.current(user.pk) == 1
    with pytest.raises(CommandError, match="no user"):
        call_command("zmq_token", "nobody")
    with pytest.raises(CommandError, match="ttl"):
        call_command("zmq_token", "prog", "--ttl", "0")


@pytest.mark.django_db
def test_the_admin_revokes_tokens(admin_client):
    user = User.objects.create_user("prog")
    response = admin_client.post(
        "/admin/zmqfeed/tokengeneration/add/", {"user": user.pk}, follow=True
    )
    assert response.status_code == 200
    assert TokenGeneration.current(user.pk) == 1  # adding a user revokes generation 0
    row = TokenGeneration.objects.get(user=user)
    admin_client.post(
        "/admin/zmqfeed/tokengeneration/",
        {"action": "revoke_tokens", "_selected_action": [row.pk]},
    )
    assert TokenGeneration.current(user.pk) == 2
