"""Signed, expiring tokens that let a program in without a browser session.

Django's signing (HMAC with SECRET_KEY) makes them; nothing here is new cryptography. A
token names its user, an expiry and the user's token generation: revoking a user's tokens
bumps the generation (:class:`zmqfeed.models.TokenGeneration`), so every token issued
before stops working at once, without a list of tokens to keep. The separator is ``.``:
the result is made of URL-safe base64 and dots, so it is a valid WebSocket subprotocol.
A token is a secret: it is never logged, never put in a URL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core import signing

SALT = "zmqfeed.token"
SUBPROTOCOL = "zmqfeed"
SUBPROTOCOL_PREFIX = "zmqfeed.token."
DEFAULT_TTL = 24 * 3600  # seconds; `zmq_token --ttl` and the token view take others
MAX_TTL = 365 * 24 * 3600
MAX_LENGTH = 512  # no token of ours is longer: a longer one is refused unread


class TokenError(ValueError):
    """A token that does not let anyone in; the message says why, never what it held."""


@dataclass(frozen=True)
class Claims:
    user_id: int
    generation: int
    expires: float  # Unix seconds


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT, sep=".")


def issue(user_id: int, generation: int, ttl: float = DEFAULT_TTL, now: float | None = None) -> str:
    """A token for the user with this token generation, valid for ``ttl`` seconds."""
    if not 0 < ttl <= MAX_TTL:
        raise ValueError(f"ttl must be from 1 to {MAX_TTL} seconds")
    expires = int((time.time() if now is None else now) + ttl)
    return _signer().sign_object({"u": user_id, "g": generation, "x": expires}, compress=False)


def read(token: object, now: float | None = None) -> Claims:
    """The claims of a well-signed, unexpired token, or TokenError saying what is wrong."""
    if not isinstance(token, str) or not token or len(token) > MAX_LENGTH:
        raise TokenError("not a token")
    try:
        claims = _signer().unsign_object(token)
    except (signing.BadSignature, ValueError, UnicodeError):  # malformed or forged alike
        raise TokenError("the token's signature does not match") from None
    if (
        not isinstance(claims, dict)
        or not all(isinstance(claims.get(k), int) for k in ("u", "g", "x"))
        or any(isinstance(claims[k], bool) for k in ("u", "g", "x"))
    ):
        raise TokenError("not a token")
    if claims["x"] <= (time.time() if now is None else now):
        raise TokenError("the token has expired")
    return Claims(claims["u"], claims["g"], float(claims["x"]))


def from_scope(scope: dict) -> str | None:
    """The token a WebSocket handshake carries: a ``zmqfeed.token.<token>`` subprotocol, or
    an ``Authorization: Bearer <token>`` header. Never the URL."""
    for protocol in scope.get("subprotocols") or ():
        if isinstance(protocol, str) and protocol.startswith(SUBPROTOCOL_PREFIX):
            return protocol[len(SUBPROTOCOL_PREFIX) :]
    for name, value in scope.get("headers") or ():
        if name.lower() == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            if kind.lower() == "bearer":
                return token.strip()
    return None
