"""A site of its own: its base template, its login page at /signin/, no admin, zmqfeed at /streams/.

The database file comes from OTHERSITE_DB (the test's temporary directory).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
DEBUG = True
SECRET_KEY = "othersite-test-only"  # a test site, never deployed
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "zmqfeed",
    "othersite",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "othersite.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "zmqfeed.views.navigation",  # login_url etc. on the site's own pages too
            ]
        },
    }
]
ASGI_APPLICATION = "othersite.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "zmqfeed.layers.InMemoryChannelLayer"}}
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("OTHERSITE_DB", BASE_DIR / "db.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
LOGIN_URL = "signin"
USE_TZ = True

ZMQFEED = {"BASE_TEMPLATE": "othersite/base.html"}
