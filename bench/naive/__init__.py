"""The naive Channels gateway of the tutorials, as a baseline: a tiny Django project of its own.

One ``group_send`` per ZeroMQ message, a stock ``AsyncWebsocketConsumer`` that sends one frame
per message per client, and the channel layer's default settings. Run under daphne, with
``BENCH_ENDPOINT=tcp://…``: ``daphne bench.naive.asgi:application``.
"""
