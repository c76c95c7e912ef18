"""Who may read a topic: every access kind against every kind of reader."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User

from zmqfeed.core.access import ANONYMOUS, Reader, can_read
from zmqfeed.core.catalog import TopicConfig

READERS = {
    "anonymous": ANONYMOUS,
    "user": Reader(authenticated=True),
    "staff": Reader(authenticated=True, staff=True),
    "superuser": Reader(authenticated=True, superuser=True),
    "member": Reader(authenticated=True, groups=frozenset({"traders", "other"})),
    "non-member": Reader(authenticated=True, groups=frozenset({"other"})),
    "staff non-member": Reader(authenticated=True, staff=True, groups=frozenset({"other"})),
}

TOPICS = {
    "public": TopicConfig("t", "T", access="public"),
    "authenticated": TopicConfig("t", "T", access="authenticated"),
    "staff": TopicConfig("t", "T", access="staff"),
    "group": TopicConfig("t", "T", access="group", groups=frozenset({"traders", "desk"})),
    "group, no groups": TopicConfig("t", "T", access="group"),
}

# Rows: topic access; columns in the order of READERS.
TABLE = {
    #                     anon   user   staff  super  member non-m  staff non-m
    "public": (True, True, True, True, True, True, True),
    "authenticated": (False, True, True, True, True, True, True),
    "staff": (False, False, True, True, False, False, True),
    "group": (False, False, False, True, True, False, False),
    "group, no groups": (False, False, False, True, False, False, False),
}


@pytest.mark.parametrize(
    ("access", "reader", "allowed"),
    [
        (access, reader, allowed)
        for access, row in TABLE.items()
        for reader, allowed in zip(READERS, row, strict=True)
    ],
)
def test_can_read(access: str, reader: str, allowed: bool) -> None:
    assert can_read(TOPICS[access], READERS[reader]) is allowed


@pytest.mark.parametrize("reader", list(READERS))
def test_unknown_access_kind_is_refused_to_all_but_superusers(reader: str) -> None:
    topic = TopicConfig("t", "T", access="secret")
    assert can_read(topic, READERS[reader]) is (reader == "superuser")


def test_flags_without_authentication_grant_nothing_beyond_public() -> None:
    forged = Reader(authenticated=False, staff=True, superuser=True, groups=frozenset({"traders"}))
    assert [can_read(t, forged) for t in TOPICS.values()] == [True, False, False, False, False]


# Reader.load from Django users


@pytest.fixture
def traders(db) -> Group:
    return Group.objects.create(name="traders")


def test_anonymous_and_missing_users_load_as_anonymous(db) -> None:
    assert Reader.load(None) == ANONYMOUS
    assert Reader.load(AnonymousUser()) == ANONYMOUS


def test_an_inactive_user_loads_as_anonymous(traders: Group) -> None:
    user = User.objects.create_user("gone", is_staff=True, is_active=False)
    user.groups.add(traders)
    assert Reader.load(user) == ANONYMOUS


def test_a_user_loads_with_flags_and_group_names(traders: Group) -> None:
    user = User.objects.create_user("ann")
    user.groups.add(traders, Group.objects.create(name="desk"))
    assert Reader.load(user) == Reader(authenticated=True, groups=frozenset({"traders", "desk"}))
    assert can_read(TOPICS["group"], Reader.load(user))


def test_staff_and_superusers_load_with_their_flags(db) -> None:
    staff = User.objects.create_user("sam", is_staff=True)
    boss = User.objects.create_superuser("root")
    assert Reader.load(staff) == Reader(authenticated=True, staff=True)
    assert Reader.load(boss) == Reader(authenticated=True, staff=True, superuser=True)
