"""zmqfeed: ZeroMQ feeds to browsers over WebSocket, as a Django Channels app."""

__version__ = "0.1.0"
