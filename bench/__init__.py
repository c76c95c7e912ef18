"""End-to-end benchmark of zmqfeed against its baselines; run with ``python -m bench``.

Every part runs in its own process: a ZeroMQ publisher (:mod:`bench.publisher`), the system
under test (:mod:`bench.systems`), and WebSocket client processes (:mod:`bench.client`).
The harness (:mod:`bench.harness`) steps the offered rate up until delivery falls behind.
"""
