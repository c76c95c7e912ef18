"""The demo site's settings: everything that differs between hosts comes from the environment."""

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
# DJANGO_DEBUG=1 without DJANGO_SECRET_KEY: a random key made once per checkout (gitignored),
# so that sessions and program tokens survive restarts and agree between its processes.
DEVELOPMENT_KEY_FILE = BASE_DIR / ".dev-secret-key"


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def development_key(path: Path) -> str:
    """The checkout's development key, made on first use; two processes starting at once
    agree on it (the file appears whole, by a hard link, or not at all)."""
    try:
        key = path.read_text(encoding="ascii").strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    except OSError:
        return get_random_secret_key()  # unreadable: this process only
    key = get_random_secret_key()
    draft = path.with_name(f"{path.name}.{os.getpid()}")
    try:
        draft.write_text(key + "\n", encoding="ascii")
        draft.chmod(0o600)
        os.link(draft, path)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return key  # a read-only checkout: this process only
    finally:
        draft.unlink(missing_ok=True)
    return key


DEBUG = env_bool("DJANGO_DEBUG")
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        # One line, not the traceback Django would print for ImproperlyConfigured.
        sys.exit(
            "zmqfeed demo: set DJANGO_SECRET_KEY to a long random string "
            "(or DJANGO_DEBUG=1 for development, with a key kept in .dev-secret-key)."
        )
    SECRET_KEY = development_key(DEVELOPMENT_KEY_FILE)

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
    if h.strip()
]
# Addresses that may read /zmqfeed/metrics without logging in (a Prometheus server).
INTERNAL_IPS = [
    a.strip() for a in os.environ.get("DJANGO_INTERNAL_IPS", "").split(",") if a.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "zmqfeed",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "project.asgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=600
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Embedded mode (no REDIS_URL): the in-memory layer, subscriber inside the server process.
# Scaled mode: channels_redis; ZMQFEED_REDIS_LAYER picks the flavour (README: "Scaled mode").
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    if os.environ.get("ZMQFEED_REDIS_LAYER", "pubsub") == "pubsub":
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [REDIS_URL]},
            }
        }
    else:
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [REDIS_URL], "capacity": 1000, "expiry": 10},
            }
        }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "zmqfeed.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 1000, "expiry": 10},
        }
    }

ZMQFEED = (
    {"CURVE_SECRET_FILE": os.environ["ZMQFEED_CURVE_SECRET_FILE"]}
    if os.environ.get("ZMQFEED_CURVE_SECRET_FILE")
    else {}
)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
LOGIN_URL = "admin:login"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "zmqfeed": {
            "handlers": ["console"],
            "level": os.environ.get("ZMQFEED_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
    },
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
