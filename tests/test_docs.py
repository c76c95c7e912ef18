"""The documentation's examples are checked against the code, so that they cannot drift.

docs/protocol.md: every ```json block is one JSON object; client frames are what
``protocol.parse_request`` accepts (or, in ```json invalid blocks, refuses with the error the
next block shows); server frames are exactly what the protocol module builds. The limits
table shows conf.DEFAULTS and the close-code table the consumer's codes. The deployment files
(docker/) are checked as far as no Docker engine is needed.
"""

from __future__ import annotations

import ast
import base64
import importlib.util
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.conftest import ROOT, Site, free_port
from zmqfeed import conf, consumer, schema
from zmqfeed.core import protocol
from zmqfeed.core.framing import FRAGMENTS
from zmqfeed.core.vocabulary import (
    FEED_DEFAULTS,
    FEED_KEYS,
    FEED_REQUIRED,
    TOPIC_DEFAULTS,
    TOPIC_KEYS,
    TOPIC_REQUIRED,
)

PROTOCOL = ROOT / "docs" / "protocol.md"
DOCKER = ROOT / "docker"

CLIENT_TYPES = {"subscribe", "unsubscribe", "ping", "auth", "publish"}
REPLY_FIELDS = {  # the consumer's replies, beside "type" and an optional "id"
    "subscribed": {"feed", "topic", "seq", "epoch"},  # and "recovered" after a `since`
    "unsubscribed": {"feed", "topic"},
    "pong": set(),
    "authenticated": {"expires"},
    "published": {"feed", "topic"},
}
SERVER_TYPES = {*REPLY_FIELDS, "message", "batch", "gap", "error"}
GAP_REASONS = {"history", "slow_consumer", "lost"}


def fenced_blocks(path: Path) -> list[tuple[str, str, int]]:
    """(info string, text, line number) of each fenced code block, indented ones included."""
    blocks: list[tuple[str, str, int]] = []
    info: str | None = None
    body: list[str] = []
    start = indent = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith("```"):
            if info is None:
                info, start, body = stripped[3:].strip(), number, []
                indent = len(line) - len(stripped)
            else:
                blocks.append((info, "\n".join(body), start))
                info = None
        elif info is not None:
            body.append(line[indent:])
    assert info is None, f"{path.name}: the block opened on line {start} is never closed"
    return blocks


def json_blocks(path: Path) -> list[tuple[str, str, int]]:
    return [b for b in fenced_blocks(path) if b[0].split()[:1] == ["json"]]


PROTOCOL_JSON = json_blocks(PROTOCOL)


def frames() -> list[tuple[dict, str, int]]:
    """(frame, info string, line) of every JSON example in protocol.md."""
    return [(json.loads(text), info, line) for info, text, line in PROTOCOL_JSON]


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate key in {keys}"
    return dict(pairs)


def test_every_json_block_is_one_json_object() -> None:
    assert len(PROTOCOL_JSON) >= 20, "protocol.md lost its examples"
    for _, text, line in PROTOCOL_JSON:
        try:
            value = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except ValueError as exc:
            pytest.fail(f"protocol.md:{line}: not one JSON document: {exc}")
        assert isinstance(value, dict), f"protocol.md:{line}: not an object"
        assert value.get("type") in CLIENT_TYPES | SERVER_TYPES, f"protocol.md:{line}: {value}"


def test_client_examples_are_accepted_by_the_parser() -> None:
    checked = set()
    for frame, info, line in frames():
        if frame["type"] not in CLIENT_TYPES or "invalid" in info:
            continue
        request = protocol.parse_request(json.dumps(frame))
        assert request.type == frame["type"], line
        assert request.id == frame.get("id"), line
        assert (request.feed, request.topic) == (frame.get("feed", ""), frame.get("topic", ""))
        assert request.since == frame.get("since"), line
        assert request.data == frame.get("token" if frame["type"] == "auth" else "data"), line
        checked.add(frame["type"])
    assert checked == CLIENT_TYPES, f"no accepted example of {CLIENT_TYPES - checked}"


def test_invalid_examples_are_refused_with_the_error_shown_after_them() -> None:
    examples = frames()
    invalid = [i for i, (_, info, _) in enumerate(examples) if "invalid" in info]
    assert invalid, "protocol.md shows no malformed frame"
    for i in invalid:
        frame, _, line = examples[i]
        with pytest.raises(protocol.ProtocolError) as refused:
            protocol.parse_request(json.dumps(frame))
        shown = examples[i + 1][0]
        expected = json.loads(
            protocol.error(refused.value.code, refused.value.detail, refused.value.id)
        )
        assert shown == expected, f"line {line}: the reply shown is not the parser's"


def _envelope(message: dict) -> bytes:
    """The message as the subscriber builds it from the example's values."""
    if message.get("encoding") == "base64":
        fragment = FRAGMENTS["binary"](base64.b64decode(message["data"], validate=True))
    elif message.get("encoding") == "hex":
        fragment = FRAGMENTS["hex"](bytes.fromhex(message["data"]))
    else:
        assert "encoding" not in message, message
        fragment = orjson.dumps(message["data"])
    if "parts" in message:
        fragment += b',"parts":' + orjson.dumps(message["parts"])
    if "upstream_seq" in message:
        fragment += b',"upstream_seq":%d' % message["upstream_seq"]
    return (
        protocol.message_head(message["feed"], message["topic"])
        + b"%d" % message["seq"]
        + protocol.message_tail(
            orjson.dumps(message["zmq_topic"]), orjson.dumps(message["ts"]), fragment
        )
    )


def _rebuilt(frame: dict) -> dict:
    kind = frame["type"]
    if kind == "message":
        return json.loads(_envelope(frame))
    if kind == "batch":
        messages = frame["messages"]
        replayed = frame.get("replayed", False)
        assert replayed or len(messages) > 1, "one live message is sent as itself"
        assert len({(m["feed"], m["topic"]) for m in messages}) == 1, "a batch is one topic's"
        seqs = [m["seq"] for m in messages]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a batch has no holes"
        envelopes = [_envelope(m) for m in messages]
        if replayed:
            [(text, _)] = protocol.replayed(envelopes, 1 << 20)
            return json.loads(text)
        return json.loads(protocol.batch_frame(envelopes))
    if kind == "gap":
        assert frame["reason"] in GAP_REASONS and frame["from_seq"] <= frame["to_seq"]
        return json.loads(
            protocol.gap(
                frame["feed"], frame["topic"], frame["from_seq"], frame["to_seq"], frame["reason"]
            )
        )
    if kind == "error":
        assert frame["code"] in protocol.ERROR_CODES
        extra = {k: v for k, v in frame.items() if k not in {"type", "code", "detail", "id"}}
        assert set(extra) <= {"feed", "topic"}, extra
        return json.loads(protocol.error(frame["code"], frame["detail"], frame.get("id"), **extra))
    fields = {k: v for k, v in frame.items() if k not in {"type", "id"}}
    optional = {"recovered"} if kind == "subscribed" else set()
    assert REPLY_FIELDS[kind] <= set(fields) <= REPLY_FIELDS[kind] | optional, (
        f"{kind} has exactly {REPLY_FIELDS[kind]} (and maybe {optional})"
    )
    return json.loads(protocol.reply(kind, frame.get("id"), **fields))


def test_server_examples_are_what_the_server_builds() -> None:
    seen = set()
    for frame, _, line in frames():
        if frame["type"] in CLIENT_TYPES:
            continue
        assert _rebuilt(frame) == frame, f"protocol.md:{line}"
        seen.add(frame["type"])
    assert seen == SERVER_TYPES, f"no example of {SERVER_TYPES - seen}"
    text = PROTOCOL.read_text(encoding="utf-8")
    for code in protocol.ERROR_CODES:
        assert f"| `{code}` |" in text, f"error code {code} is not in the table"
    for reason in GAP_REASONS:
        assert f'`"{reason}"`' in text


def test_limits_table_shows_the_defaults() -> None:
    rows = re.findall(r"^\| `([A-Z_]+)` \| `([^`]+)` \|", PROTOCOL.read_text(), re.M)
    documented = {name: ast.literal_eval(value) for name, value in rows}
    for name in ("MAX_CLIENT_FRAME", "CLIENT_RATE", "CLIENT_BURST", "MAX_SUBSCRIPTIONS"):
        assert name in documented, f"{name} is missing from the limits table"
    for name, value in documented.items():
        assert value == conf.DEFAULTS[name], f"{name}: documented {value}"


def test_close_code_table_has_the_consumers_codes() -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    codes = (
        consumer.CLOSE_NOT_FOUND,
        consumer.CLOSE_FORBIDDEN,
        consumer.CLOSE_TOO_LARGE,
        consumer.CLOSE_FLOOD,
        consumer.CLOSE_UNAUTHORIZED,
        consumer.CLOSE_TRY_AGAIN,
    )
    for code in codes:
        assert re.search(rf"^\| {code} \|", text, re.M), f"close code {code} is not in the table"


# The deployment files.


def test_compose_feeds_file_is_valid_and_reads_the_demo_producer() -> None:
    document = schema.validate(json.loads((DOCKER / "feeds.json").read_text()))
    [feed] = document["feeds"]
    assert feed["endpoints"] == ["tcp://producer:5556"] and not feed["bind"]
    assert feed["payload"] == "json" and {t["prefix"] for t in feed["topics"]} == {"demo"}
    compose = (DOCKER / "compose.yaml").read_text()
    assert '"zmq_publish", "tcp://*:5556", "--bind"' in compose
    assert '"--json", "--topic", "demo"' in compose


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_shell_scripts_parse(shell: str) -> None:
    scripts = sorted(DOCKER.glob("*.sh"))
    assert scripts
    for script in scripts:
        result = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script.name}: {result.stderr}"


def _healthcheck_module():
    spec = importlib.util.spec_from_file_location("healthcheck", DOCKER / "healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_healthcheck_names_an_allowed_host() -> None:
    host_header = _healthcheck_module().host_header
    assert host_header("feeds.example.com,localhost") == "feeds.example.com"
    assert host_header(" .example.com ") == "example.com"
    assert host_header("*") == "localhost"
    assert host_header("*,[::1]") == "[::1]"


def test_healthcheck_against_a_production_daphne(tmp_path: Path) -> None:
    """DEBUG off and a host name that is not 127.0.0.1: Django refuses any other Host."""
    env = {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "test-only-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "feeds.example.test",
    }
    site = Site(tmp_path, env)
    try:
        server = site.daphne()
        url = f"{server.http}/zmqfeed/healthz"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        assert refused.value.code == 400  # Host: 127.0.0.1:PORT is not allowed
        check = _healthcheck_module().check
        assert check(url, env["DJANGO_ALLOWED_HOSTS"]) is None

        def healthcheck(target: str, hosts: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, str(DOCKER / "healthcheck.py"), target],
                env={**site.env, "DJANGO_ALLOWED_HOSTS": hosts},
                capture_output=True,
                text=True,
                timeout=30,
            )

        healthy = healthcheck(url, env["DJANGO_ALLOWED_HOSTS"])
        assert healthy.returncode == 0, healthy.stderr
        wrong_host = healthcheck(url, "other.example.test")
        assert wrong_host.returncode == 1 and "HTTP 400" in wrong_host.stderr
        down = healthcheck(f"http://127.0.0.1:{free_port()}/zmqfeed/healthz", "localhost")
        assert down.returncode == 1 and "unhealthy" in down.stderr
    finally:
        site.close()


# docs/configuration.md: every setting, feed and topic field and environment variable.

CONFIGURATION = ROOT / "docs" / "configuration.md"


def _section(path: Path, heading: str) -> str:
    """The text under a heading, up to the next heading of the same or a higher level."""
    text = path.read_text(encoding="utf-8")
    level = heading.split(" ")[0]
    start = text.index(f"\n{heading}\n")
    ends = [m.start() for m in re.finditer(rf"\n#{{1,{len(level)}}} ", text[start + 1 :])]
    return text[start : start + 1 + ends[0]] if ends else text[start:]


def _rows(section: str, key: str) -> dict[str, str]:
    """First column (a `key`) → second column, of a table's rows."""
    return dict(re.findall(rf"^\| `({key})` \| ([^|]+?) \|", section, re.M))


def test_configuration_lists_every_setting_with_its_default() -> None:
    rows = _rows(_section(CONFIGURATION, "## Settings"), "[A-Z_]+")
    missing = sorted(set(conf.DEFAULTS) - set(rows))
    assert not missing, f"docs/configuration.md does not list ZMQFEED {missing}"
    assert sorted(set(rows) - set(conf.DEFAULTS)) == [], "it lists settings that do not exist"
    for key, default in rows.items():
        shown = ast.literal_eval(default.strip("`"))
        assert shown == conf.DEFAULTS[key], f"{key}: documented {shown!r}"


@pytest.mark.parametrize(
    "heading, keys, required, defaults",
    [
        ("### Feed fields", FEED_KEYS, FEED_REQUIRED, FEED_DEFAULTS),
        ("### Topic fields", TOPIC_KEYS, TOPIC_REQUIRED, TOPIC_DEFAULTS),
    ],
)
def test_configuration_lists_every_feed_and_topic_field(heading, keys, required, defaults) -> None:
    rows = _rows(_section(CONFIGURATION, heading), "[a-z_]+")
    assert list(rows) == list(keys), f"{heading}: the fields, in export's order"
    for key, default in rows.items():
        if key in required:
            assert default == "required", key
        else:
            assert json.loads(default.strip("`")) == defaults[key], f"{key}: documented {default}"


def _environ_names(path: Path) -> set[str]:
    """The environment variables a Python file reads (os.environ, os.getenv, env_bool, and
    dj_database_url.config's DATABASE_URL)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            key = node.slice
        elif isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            if called == "dj_database_url.config":
                names.add("DATABASE_URL")
                continue
            if called not in {"os.environ.get", "os.environ.setdefault", "os.getenv", "env_bool"}:
                continue
            key = node.args[0]
        else:
            continue
        if isinstance(key, ast.Name):
            continue  # a helper's parameter (env_bool's): its callers are read
        assert isinstance(key, ast.Constant), f"{path}: an environment variable read by name"
        names.add(key.value)
    return names


def test_configuration_lists_every_environment_variable() -> None:
    documented = set(_rows(_section(CONFIGURATION, "## Environment variables"), "[A-Z_0-9]+"))
    python = [ROOT / "manage.py", *(ROOT / "project").glob("*.py"), *DOCKER.glob("*.py")]
    python += (ROOT / "zmqfeed").rglob("*.py")
    read = set().union(*(_environ_names(path) for path in python))
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= read  # the reader reads
    compose = (DOCKER / "compose.yaml").read_text()
    read |= set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", compose))
    read |= set(re.findall(r"^#?([A-Z_][A-Z0-9_]*)=", (DOCKER / "env.example").read_text(), re.M))
    read |= set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", (DOCKER / "init.sh").read_text()))
    missing = sorted(read - documented)
    assert not missing, f"docs/configuration.md does not list {missing}"


def test_readme_points_at_the_configuration_reference() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/configuration.md)" in _section(ROOT / "README.md", "## Configuration")
    # One place for the tables: the README does not repeat them.
    assert "| `MAX_BATCH` |" not in readme and "| `publish_socket` |" not in readme


def test_configuration_example_is_a_valid_document() -> None:
    [example] = json_blocks(CONFIGURATION)
    schema.validate(json.loads(example[1]))


# The user docs stand alone: nothing a reader of the repository cannot open.

USER_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
UNSEEN = [
    (re.compile(r"design\.md", re.I), "a design file"),
    (re.compile(r"\.\./shared|/work/"), "a path outside the repository"),
    (re.compile(r"\b(issues?|pr|pull request|ticket)\s*#?\d+", re.I), "an issue number"),
    (re.compile(r"(?<![\w&/#])#\d+\b"), "an issue number"),
]


def unseen_references(text: str) -> list[str]:
    """What in ``text`` points at something readers of the docs cannot see."""
    return [f"{what}: {m.group(0)!r}" for pattern, what in UNSEEN for m in pattern.finditer(text)]


def test_the_reference_finder_finds_them() -> None:
    text = "See DESIGN.md, ../shared/x, issue 12, issue #12, #12 and PR 7; not #anchor or &#39;"
    found = {hit.split(": ", 1)[1] for hit in unseen_references(text)}
    assert found == {
        repr(s) for s in ("DESIGN.md", "../shared", "issue 12", "issue #12", "#12", "PR 7")
    }
    assert unseen_references("[Large messages](#large-messages), color: #fff, x#1") == []


@pytest.mark.parametrize("path", USER_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_user_docs_name_nothing_a_reader_cannot_see(path: Path) -> None:
    assert len(USER_DOCS) > 5
    found = unseen_references(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}: {found}"
