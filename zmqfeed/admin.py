"""Feeds and topics in Django's admin (staff only, as the admin is).

Changes made here reach running subscribers and consumers within seconds:
they reload the catalog, so nothing here needs to signal them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

from . import curve, lease, status
from .core.status import DISABLED
from .core.vocabulary import (
    FEED_DEFAULTS,
    FEED_KEYS,
    FRAME_KINDS,
    SEPARATOR_MAX,
    TOPIC_KEYS,
)
from .models import Feed, TokenGeneration, Topic
from .schema import (
    PUBLISH_WORDING,
    connection_file_problem,
    curve_publishers_problems,
    endpoint_list_problems,
    feed_slug_problem,
    frames_problem,
    groups_problem,
    jupyter_publish_problem,
    last_values_problem,
    raw_prefix_problem,
    separator_problem,
)

# The status page's badge colours (zmqfeed.css), for the feed list's state column.
STATE_COLOURS = {
    "receiving": "#1a7f37",
    "connected": "#1f5fbf",
    "bound": "#1f5fbf",
    "silent": "#b35900",
    "error": "#c62828",
    "disabled": "#6b6f76",
}


class LinesField(forms.CharField):
    """A model's JSON list of strings as a textarea, one per line; each problem (from
    ``problems``: (index, text) pairs) is an error line of its own."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60, "spellcheck": "false"})

    def __init__(self, problems: Callable[[list[str]], list[tuple[Any, str]]], **kwargs: Any):
        super().__init__(**kwargs)
        self.problems = problems

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        text = super().to_python(value)
        return [line.strip() for line in text.splitlines() if line.strip()]

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        problems = self.problems(value)
        if problems:
            raise ValidationError([problem for _, problem in problems])


class FramesField(forms.CharField):
    """The model's JSON list of frame kinds as one line: ``payload, seq_le32``."""

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        text = super().to_python(value)
        return [kind for kind in text.replace(",", " ").split() if kind]

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        unknown = [kind for kind in value if kind not in FRAME_KINDS]
        if unknown:
            raise ValidationError(
                f"Unknown frame kind(s) {', '.join(unknown)}; "
                f"the kinds are {', '.join(FRAME_KINDS)}."
            )
        problem = frames_problem(value)
        if problem:
            raise ValidationError(problem[0].upper() + problem[1:] + ".")


class FeedForm(forms.ModelForm):
    # Problems that depend on ``bind`` come from clean().
    endpoints = LinesField(
        endpoint_list_problems,
        help_text="One per line, e.g. tcp://127.0.0.1:5556, ipc:///run/feed.sock, "
        "epgm://eth0;239.192.1.1:5555 (multicast only where this libzmq has it).",
    )
    frames = FramesField(
        initial=", ".join(FEED_DEFAULTS["frames"]),
        help_text="Multipart: what frame 1, 2, … after the topic carry, e.g. "
        f"“payload, seq_le32”. Kinds: {', '.join(FRAME_KINDS)}. Frame 1 is the data, "
        "later frames its parts; a sequence number becomes upstream_seq.",
    )
    # Not stripped: one space is the usual separator.
    separator = forms.CharField(
        strip=False,
        max_length=SEPARATOR_MAX,
        initial=FEED_DEFAULTS["separator"],
        help_text="Prefix framing: what stands between topic and payload (one space by default).",
    )
    curve_publishers = LinesField(
        curve_publishers_problems,
        required=False,
        help_text="CURVE: the trusted publishers' public keys (Z85, 40 characters), one per "
        "line, or * alone for any key (encryption only). Empty: no CURVE. Publishers need "
        "the gateway's public key, shown below.",
    )
    publish_endpoints = LinesField(
        endpoint_list_problems,
        required=False,
        help_text="Two-way: where what clients publish goes, one per line, e.g. "
        "tcp://127.0.0.1:5560. Empty: nobody can publish to this feed, whatever its topics' "
        "publish access.",
    )

    class Meta:
        model = Feed
        fields = tuple(k for k in FEED_KEYS if k != "topics")  # as in `zmq_feeds` documents

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        problem = feed_slug_problem(data["slug"]) if "slug" in data else None
        if problem:
            self.add_error("slug", problem[0].upper() + problem[1:] + ".")
        if "endpoints" in data and "bind" in data:
            problems = endpoint_list_problems(data["endpoints"], bind=data["bind"])
            if problems:
                self.add_error("endpoints", [problem for _, problem in problems])
        if "publish_endpoints" in data and "publish_bind" in data:
            problems = endpoint_list_problems(
                data["publish_endpoints"], bind=data["publish_bind"], **PUBLISH_WORDING
            )
            if problems:
                self.add_error("publish_endpoints", [problem for _, problem in problems])
        if "separator" in data:
            problem = separator_problem(data["separator"])
            if problem:
                self.add_error("separator", problem[0].upper() + problem[1:] + ".")
        if "framing" in data:
            problem = connection_file_problem(
                data["framing"], data.get("jupyter_connection_file") or ""
            )
            if problem:
                self.add_error("jupyter_connection_file", f"This file {problem}.")
        return data


class TopicForm(forms.ModelForm):
    class Meta:
        model = Topic
        fields = ("feed", *TOPIC_KEYS)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        problem = groups_problem(
            data.get("access", ""), data.get("publish_access", ""), data.get("groups") or ()
        )
        if problem:
            self.add_error("groups", problem[0].upper() + problem[1:] + ".")
        # In a feed's inline the feed is the form's parent, with the framing being saved.
        feed = data.get("feed") or (
            self.instance.feed if self.instance.feed_id or _has_feed(self.instance) else None
        )
        if feed is not None and "prefix" in data:
            problem = raw_prefix_problem(feed.framing, data["prefix"])
            if problem:
                self.add_error("prefix", problem[0].upper() + problem[1:] + ".")
        if feed is not None and "publish_access" in data:
            problem = jupyter_publish_problem(feed.framing, data["publish_access"])
            if problem:
                self.add_error("publish_access", problem[0].upper() + problem[1:] + ".")
        if "history" in data and "last_values" in data:  # each a valid number (or empty)
            problem = last_values_problem(data["history"], data["last_values"])
            if problem:
                self.add_error("last_values", problem[0].upper() + problem[1:] + ".")
        return data


def _has_feed(topic: Topic) -> bool:
    try:
        return topic.feed is not None
    except Topic.feed.RelatedObjectDoesNotExist:
        return False


class LayoutMedia:
    """Layout at laptop widths: filters above the lists, a topics table that fits the form."""

    css = {"all": ("zmqfeed/admin.css",)}


class TopicInline(admin.TabularInline):
    model = Topic
    form = TopicForm
    extra = 1
    fields = TOPIC_KEYS
    prepopulated_fields = {"slug": ("name",)}
    autocomplete_fields = ("groups",)
    show_change_link = True

    def formfield_for_choice_field(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        """The values (prefix, public, nobody, …), not their long labels, so that the table
        fits the form; the topic's own page, and the column headers' help, explain them."""
        kwargs["choices"] = [(value, value) for value, _ in db_field.choices]
        return super().formfield_for_choice_field(db_field, request, **kwargs)


@admin.register(Feed)
class FeedAdmin(admin.ModelAdmin):
    form = FeedForm
    inlines = (TopicInline,)
    Media = LayoutMedia
    list_display = (
        "slug",
        "name",
        "state",
        "rate",
        "endpoint_list",
        "bind",
        "framing_value",
        "payload_value",
        "enabled",
        "topic_count",
        "holder",
        "live_page",
    )
    list_display_links = ("slug", "name")
    list_filter = ("enabled", "bind", "framing", "payload")
    search_fields = ("slug", "name", "endpoints", "topics__slug", "topics__prefix")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("created", "updated", "gateway_public_key", "subscriber")
    actions = ("enable_feeds", "disable_feeds")
    fieldsets = (
        (None, {"fields": ("name", "slug", "enabled", "subscriber")}),
        (
            "ZeroMQ source",
            {"fields": ("endpoints", "bind", "framing", "payload", "max_message_size")},
        ),
        (
            "Real publishers' formats",
            {
                "fields": ("frames", "separator", "compression", "jupyter_connection_file"),
                "description": "How a publisher's frames are read beyond topic and payload: "
                "further frames and sequence numbers (multipart), the separator (prefix), "
                "compression, and a Jupyter kernel's connection file (jupyter).",
            },
        ),
        (
            "CURVE",
            {
                "fields": ("curve_publishers", "gateway_public_key"),
                "description": "Encrypted, authenticated ingest: the gateway is the CURVE "
                "server; its key pair is read from ZMQFEED['CURVE_SECRET_FILE'] (never here).",
            },
        ),
        (
            "Publishing (two-way)",
            {
                "fields": ("publish_endpoints", "publish_socket", "publish_bind"),
                "classes": ("collapse",),
                "description": "Where what clients publish to this feed's topics goes: the "
                "gateway's own socket, apart from the one it reads with. Who may publish is "
                "each topic's publish access (nobody by default). A jupyter feed takes "
                "nothing back.",
            },
        ),
        ("History", {"fields": ("created", "updated"), "classes": ("collapse",)}),
    )

    @admin.display(description="gateway public key")
    def gateway_public_key(self, feed: Feed) -> str:
        key = curve.public_key()  # the public half only: the secret never leaves the file
        return key or "(no readable ZMQFEED['CURVE_SECRET_FILE']: CURVE feeds cannot open)"

    # The values, not their long labels, so that the list fits beside the filters.
    @admin.display(description="framing", ordering="framing")
    def framing_value(self, feed: Feed) -> str:
        return feed.framing

    @admin.display(description="payload", ordering="payload")
    def payload_value(self, feed: Feed) -> str:
        return feed.payload

    @admin.display(description="subscriber")
    def subscriber(self, feed: Feed) -> str:
        """Which zmq_subscribe process numbers the feed (its lease holder), and since when."""
        found = self._holder(feed)
        if isinstance(found, str):
            return found
        since = timezone.localtime(dt.datetime.fromtimestamp(found.since, dt.timezone.utc))
        return f"{found.host} pid {found.pid}, since {since:%Y-%m-%d %H:%M:%S}"

    @admin.display(description="subscriber")
    def holder(self, feed: Feed) -> str:
        """The list's short form: host:pid."""
        found = self._holder(feed)
        return found if isinstance(found, str) else f"{found.host}:{found.pid}"

    @staticmethod
    def _holder(feed: Feed) -> lease.Holder | str:
        if not feed.slug:
            return "-"
        try:
            held = lease.holders([feed.slug])
        except Exception as exc:  # Redis away: the page still works
            return f"unknown (Redis: {type(exc).__name__})"
        if held is None:
            return "embedded"
        return held[feed.slug] or "none"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Feed]:
        return super().get_queryset(request).annotate(topic_total=Count("topics"))

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        """The list's page of feeds, each with its row of the status page (one read)."""
        changelist = super().get_changelist_instance(request)
        try:
            rows = {row["slug"]: row for row in status.overview()["feeds"]}
        except Exception as exc:  # the list still works without it
            rows = {}
            problem = f"unknown ({type(exc).__name__}: {exc})"
            for feed in changelist.result_list:
                feed.status_row = {"state": problem, "detail": "", "rate": 0.0}
        for feed in changelist.result_list:
            if feed.slug in rows:
                feed.status_row = rows[feed.slug]
        return changelist

    @admin.display(description="state")
    def state(self, feed: Feed) -> str:
        """As on the status page: a coloured word, and why (an error's text) beneath."""
        row = getattr(feed, "status_row", None)
        if row is None:
            return "-"
        colour = STATE_COLOURS.get(row["state"], "#6b6f76")
        if not row["detail"] or row["state"] == DISABLED:  # the word says it all
            return format_html('<strong style="color: {}">{}</strong>', colour, row["state"])
        return format_html(
            '<strong style="color: {}">{}</strong><br><small>{}</small>',
            colour,
            row["state"],
            row["detail"],
        )

    @admin.display(description="msg/s")
    def rate(self, feed: Feed) -> str:
        row = getattr(feed, "status_row", None)
        return "-" if row is None or row["state"] == DISABLED else f"{row['rate']:.1f}"

    @admin.display(description="live")
    def live_page(self, feed: Feed) -> str:
        if not feed.enabled or not feed.topic_total:
            return "-"
        try:
            url = reverse("zmqfeed:feed_detail", args=[feed.slug])
        except NoReverseMatch:  # a site that mounts the admin without zmqfeed's pages
            return "-"
        return format_html('<a href="{}">live page</a>', url)

    @admin.display(description="endpoints")
    def endpoint_list(self, feed: Feed) -> str:
        return ", ".join(feed.endpoints or ())

    @admin.display(description="topics", ordering="topic_total")
    def topic_count(self, feed: Feed) -> int:
        return feed.topic_total

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[Feed], enabled: bool) -> None:
        # update() skips auto_now, and watchers may look at `updated`: set it here.
        changed = queryset.exclude(enabled=enabled).update(enabled=enabled, updated=timezone.now())
        word = "enabled" if enabled else "disabled"
        self.message_user(
            request,
            f"{changed} feed{'s' * (changed != 1)} {word}"
            f" ({queryset.count() - changed} already {word}).",
            messages.SUCCESS,
        )

    @admin.action(description="Enable selected feeds", permissions=("change",))
    def enable_feeds(self, request: HttpRequest, queryset: QuerySet[Feed]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected feeds", permissions=("change",))
    def disable_feeds(self, request: HttpRequest, queryset: QuerySet[Feed]) -> None:
        self._set_enabled(request, queryset, False)


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    form = TopicForm
    Media = LayoutMedia
    list_display = ("slug", "feed", "name", "prefix", "access", "publish_access", "group_names")
    list_filter = ("feed", "access", "publish_access")
    search_fields = ("slug", "name", "prefix", "feed__slug", "feed__name")
    list_select_related = ("feed",)
    autocomplete_fields = ("feed",)
    filter_horizontal = ("groups",)
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Topic]:
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="groups")
    def group_names(self, topic: Topic) -> str:
        return ", ".join(sorted(g.name for g in topic.groups.all()))


@admin.register(TokenGeneration)
class TokenGenerationAdmin(admin.ModelAdmin):
    """Programs' tokens: adding a user here, or the action, revokes all of the user's tokens."""

    list_display = ("user", "generation", "revoked")
    search_fields = ("user__username",)
    readonly_fields = ("generation", "revoked")
    raw_id_fields = ("user",)
    actions = ("revoke_tokens",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.generation, obj.revoked = 1, timezone.now()  # tokens of generation 0 stop
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke every token of the selected users")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[TokenGeneration]) -> None:
        users = list(queryset.values_list("user_id", flat=True))
        for user_id in users:
            TokenGeneration.revoke(user_id)
        self.message_user(request, f"Revoked the tokens of {len(users)} user(s).", messages.SUCCESS)
