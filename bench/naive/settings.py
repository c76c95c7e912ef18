"""Settings of the naive gateway: the minimum a Channels tutorial has, no database."""

SECRET_KEY = "bench-naive-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["daphne", "channels"]
ROOT_URLCONF = "bench.naive.urls"
ASGI_APPLICATION = "bench.naive.asgi.application"
DATABASES: dict = {}
USE_TZ = True
# The in-memory layer with Channels' defaults (capacity 100, expiry 60 s), as tutorials leave it.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
