"""RFC 6455 frames as a server sends them: built once per frame, the same bytes for every client.

A server's frames are unmasked (RFC 6455 5.1), so a frame of a topic is the same bytes
for every client that gets it: its header and payload are joined once, and each
connection writes them as they are (zmqfeed/daphne/preframed.py).
"""

from __future__ import annotations

FIN_TEXT = 0x81  # FIN set, opcode 1 (text)
MAX_PAYLOAD = (1 << 63) - 1  # RFC 6455 5.2: the 64-bit length's most significant bit is 0


def header(length: int, first: int = FIN_TEXT) -> bytes:
    """The header of an unmasked frame of ``length`` payload bytes: 7-, 16- or 64-bit length."""
    if length < 0 or length > MAX_PAYLOAD:
        raise ValueError(f"invalid WebSocket payload length {length}")
    if length <= 125:
        return bytes((first, length))
    if length <= 0xFFFF:
        return bytes((first, 126)) + length.to_bytes(2, "big")
    return bytes((first, 127)) + length.to_bytes(8, "big")


def text_frame(payload: bytes) -> bytes:
    """A whole (FIN) text frame of ``payload``, UTF-8 already, unmasked: ready for the wire."""
    return header(len(payload)) + payload
