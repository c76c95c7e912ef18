"""Who may read a topic: a pure decision over what is known of the user at connect time."""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import TopicConfig


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
    if topic.access == "public":
        return True
    if not reader.authenticated:
        return False
    if reader.superuser or topic.access == "authenticated":
        return True
    if topic.access == "staff":
        return reader.staff
    if topic.access == "group":
        return bool(topic.groups & reader.groups)
    return False
