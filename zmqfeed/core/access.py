"""Who may read a topic: a pure decision over what is known of the user at connect time."""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import TopicConfig
from .vocabulary import ACCESS_AUTHENTICATED, ACCESS_GROUP, ACCESS_PUBLIC, ACCESS_STAFF


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
    if topic.access == ACCESS_PUBLIC:
        return True
    if not reader.authenticated:
        return False
    if reader.superuser or topic.access == ACCESS_AUTHENTICATED:
        return True
    if topic.access == ACCESS_STAFF:
        return reader.staff
    if topic.access == ACCESS_GROUP:
        return bool(topic.groups & reader.groups)
    return False
