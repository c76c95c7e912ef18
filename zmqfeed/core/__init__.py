"""The pure parts: bytes, requests and configuration values in; frames and actions out.

Nothing here does I/O or imports Django's ORM, Channels or ZeroMQ sockets, so every rule of
the protocol and of routing is tested directly and fast; the subscriber, the consumer and the
commands are shells around these modules. An import-linter contract keeps it so.
"""
