"""``zmq_token USER [--ttl SECONDS] [--revoke]``: a token for a program, or revoke them all."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from zmqfeed import tokens
from zmqfeed.models import TokenGeneration


class Command(BaseCommand):
    help = (
        "Print a signed, expiring token with which a program reads what USER may read "
        "(WebSocket subprotocol zmqfeed.token.<token>, Authorization: Bearer, or an auth "
        "frame). --revoke stops every token of USER at once instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="the username")
        parser.add_argument(
            "--ttl",
            type=int,
            default=tokens.DEFAULT_TTL,
            help=f"seconds the token is valid (default {tokens.DEFAULT_TTL}, at most "
            f"{tokens.MAX_TTL})",
        )
        parser.add_argument("--revoke", action="store_true", help="revoke USER's tokens")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: options["user"]})
        except User.DoesNotExist:
            raise CommandError(f"no user {options['user']!r}") from None
        if options["revoke"]:
            generation = TokenGeneration.revoke(user.pk)
            self.stderr.write(f"Revoked every token of {user} (generation {generation}).")
            return
        if not user.is_active:
            raise CommandError(f"{user} is inactive: a token would let nobody in")
        try:
            token = tokens.issue(user.pk, TokenGeneration.current(user.pk), options["ttl"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(token)
