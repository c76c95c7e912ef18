#!/bin/sh
# One-shot setup before the servers start (compose service "init"): database tables, the
# feeds file, and an admin user when DJANGO_SUPERUSER_PASSWORD is set. Safe to run again:
# migrate and import change only what differs, an existing admin user is left alone.
set -eu

python manage.py migrate --noinput

# ZMQFEED_FEEDS_FILE="" skips the import (feeds then come from the admin only). The import
# upserts by slug and never deletes: feeds added in the admin stay.
feeds_file="${ZMQFEED_FEEDS_FILE-docker/feeds.json}"
if [ -n "$feeds_file" ]; then
    python manage.py zmq_feeds import "$feeds_file"
fi

# createsuperuser --noinput reads DJANGO_SUPERUSER_USERNAME, _EMAIL and _PASSWORD.
if [ -n "${DJANGO_SUPERUSER_PASSWORD:-}" ]; then
    export DJANGO_SUPERUSER_USERNAME="${DJANGO_SUPERUSER_USERNAME:-admin}"
    export DJANGO_SUPERUSER_EMAIL="${DJANGO_SUPERUSER_EMAIL:-admin@localhost}"
    if ! out=$(python manage.py createsuperuser --noinput 2>&1); then
        case "$out" in
            *"already taken"*) echo "admin user $DJANGO_SUPERUSER_USERNAME exists; left as it is" ;;
            *) echo "$out" >&2; exit 1 ;;
        esac
    else
        echo "$out"
    fi
fi
