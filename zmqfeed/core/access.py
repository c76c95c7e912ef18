"""Who may read a topic: a pure decision over what is known of the user at connect time."""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import TopicConfig
from .vocabulary import (
    ACCESS_AUTHENTICATED,
    ACCESS_GROUP,
    ACCESS_NOBODY,
    ACCESS_PUBLIC,
    ACCESS_STAFF,
)


@dataclass(frozen=True)
class Reader:
    authenticated: bool = False
    staff: bool = False
    superuser: bool = False
    groups: frozenset[str] = frozenset()

    @classmethod
    def load(cls, user) -> Reader:
        """From a Django user (sync: touches the database for groups)."""
        if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
            return ANONYMOUS
        return cls(
            authenticated=True,
            staff=user.is_staff,
            superuser=user.is_superuser,
            groups=frozenset(user.groups.values_list("name", flat=True)),
        )


ANONYMOUS = Reader()


def can_read(topic: TopicConfig, reader: Reader) -> bool:
    """Superusers read every topic; to anyone else an unknown access value is closed."""
    return allows(topic.access, topic.groups, reader)


def can_publish(topic: TopicConfig, reader: Reader) -> bool:
    """As reading, by the topic's `publish_access`; `nobody` is closed to superusers too."""
    return topic.publish_access != ACCESS_NOBODY and allows(
        topic.publish_access, topic.groups, reader
    )


def allows(access: str, groups: frozenset[str], reader: Reader) -> bool:
    if access == ACCESS_PUBLIC:
        return True
    if not reader.authenticated or access == ACCESS_NOBODY:
        return False
    if reader.superuser or access == ACCESS_AUTHENTICATED:
        return True
    if access == ACCESS_STAFF:
        return reader.staff
    if access == ACCESS_GROUP:
        return bool(groups & reader.groups)
    return False
