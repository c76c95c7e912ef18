"""The decoders of real publishers' formats (pure): frames in, an envelope fragment or a
reason to drop out, never anything else."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import zlib

import msgpack
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zmqfeed.core.framing import Decoder, Dropped
from zmqfeed.core.vocabulary import COMPRESSIONS, FRAME_KINDS, FRAMINGS, PAYLOADS, SEQ_KINDS

BIG = 1 << 20


def data_of(decoder: Decoder, frames: list[bytes]) -> tuple[bytes, dict, int | None]:
    """(topic, the envelope's fields after data, upstream_seq) as a client would read them."""
    topic, fragment, seq = decoder(frames)
    return topic, orjson.loads(b'{"data":' + fragment + b"}"), seq


def dropped(decoder: Decoder, frames: list[bytes]) -> str:
    with pytest.raises(Dropped) as info:
        decoder(frames)
    return info.value.kind


# multipart with more frames


def test_bitcoin_core_hash_body_and_little_endian_sequence():
    decoder = Decoder("multipart", "hex", BIG, frames=["payload", "seq_le32"])
    block = bytes(range(32))
    topic, fields, seq = data_of(decoder, [b"hashblock", block, (7).to_bytes(4, "little")])
    assert topic == b"hashblock" and seq == 7
    assert fields == {"data": block.hex(), "encoding": "hex", "upstream_seq": 7}


@pytest.mark.parametrize(
    ("kind", "raw", "value"),
    [
        ("seq_le32", (1).to_bytes(4, "little"), 1),
        ("seq_be32", (1).to_bytes(4, "big"), 1),
        ("seq_le64", (2**40).to_bytes(8, "little"), 2**40),
        ("seq_be64", (2**63).to_bytes(8, "big"), 2**63),
    ],
)
def test_sequence_numbers_in_each_byte_order(kind, raw, value):
    decoder = Decoder("multipart", "json", BIG, frames=["payload", kind])
    assert decoder([b"t", b"1", raw])[2] == value


def test_a_sequence_frame_of_the_wrong_size_is_a_bad_frame():
    decoder = Decoder("multipart", "json", BIG, frames=["payload", "seq_le32"])
    assert dropped(decoder, [b"t", b"1", b"\x01\x00"]) == "bad_frames"


def test_pupil_msgpack_with_an_image_frame():
    decoder = Decoder("multipart", "msgpack", BIG, frames=["payload", "binary"])
    payload = msgpack.packb({"topic": "frame.world", "width": 2, "height": 1, "raw": b"\x00\xff"})
    _, fields, seq = data_of(decoder, [b"frame.world", payload, b"\x01\x02\x03"])
    assert fields["data"] == {"topic": "frame.world", "width": 2, "height": 1, "raw": "AP8="}
    assert fields["parts"] == ["AQID"] and seq is None


def test_frames_beyond_the_list_come_as_base64_and_kinds_decode_as_named():
    decoder = Decoder("multipart", "json", BIG, frames=["payload", "text", "hex", "json"])
    _, fields, _ = data_of(decoder, [b"t", b"[1]", b"caf\xc3\xa9", b"\xab", b'{"a":1}', b"\x00"])
    assert fields == {"data": [1], "parts": ["café", "ab", {"a": 1}, "AA=="]}


def test_a_topic_only_message_has_no_data():
    assert data_of(Decoder("multipart", "json", BIG), [b"heartbeat"]) == (
        b"heartbeat",
        {"data": None},
        None,
    )


def test_a_first_frame_kind_other_than_payload_names_the_datas_kind():
    _, fields, _ = data_of(Decoder("multipart", "json", BIG, frames=["text"]), [b"t", b"x"])
    assert fields == {"data": "x"}


@pytest.mark.parametrize("frames", [["seq_le32"], ["payload", "nope"], []])
def test_a_bad_frames_list_is_refused_when_the_decoder_is_made(frames):
    if not frames:
        assert Decoder("multipart", "json", BIG, frames=frames).kinds == ("payload",)
        return
    with pytest.raises(ValueError):
        Decoder("multipart", "json", BIG, frames=frames)


# prefix framing with a separator


def test_monero_topic_colon_json():
    decoder = Decoder("prefix", "json", BIG, separator=b":")
    topic, fields, _ = data_of(decoder, [b'json-minimal-txpool_add:[{"id":"ab","fee":1}]'])
    assert topic == b"json-minimal-txpool_add"
    assert fields == {"data": [{"id": "ab", "fee": 1}]}


def test_misp_topic_space_json():
    topic, fields, _ = data_of(
        Decoder("prefix", "json", BIG), [b'misp_json_event {"Event": {"id": "1"}}']
    )
    assert topic == b"misp_json_event" and fields["data"] == {"Event": {"id": "1"}}


# hex, msgpack


def test_hex_payload():
    _, fields, _ = data_of(Decoder("multipart", "hex", BIG), [b"t", b"\x00\x10\xff"])
    assert fields == {"data": "0010ff", "encoding": "hex"}


def test_msgpack_values_become_json():
    payload = msgpack.packb({1: [1.5, None, True], "b": b"\x01", "s": "é"}, use_bin_type=True)
    _, fields, _ = data_of(Decoder("multipart", "msgpack", BIG), [b"t", payload])
    assert fields["data"] == {"1": [1.5, None, True], "b": "AQ==", "s": "é"}


def test_bad_msgpack_is_dropped_with_a_reason():
    assert dropped(Decoder("multipart", "msgpack", BIG), [b"t", b"\xc1"]) == "invalid_msgpack"
    extra = msgpack.packb(1) + msgpack.packb(2)
    assert dropped(Decoder("multipart", "msgpack", BIG), [b"t", extra]) == "invalid_msgpack"


# compression


@pytest.mark.parametrize(
    ("compression", "pack"), [("zlib", zlib.compress), ("gzip", gzip.compress)]
)
def test_compressed_json_is_inflated(compression, pack):
    decoder = Decoder("raw", "json", BIG, compression=compression)
    topic, fields, _ = data_of(decoder, [pack(b'{"$schemaRef": "x", "message": {}}')])
    assert topic == b"" and fields["data"] == {"$schemaRef": "x", "message": {}}


def test_a_decompression_bomb_is_too_large_after_reading_at_most_the_limit():
    bomb = zlib.compress(b"\0" * (64 << 20))  # 64 MiB of zeros in about 64 KB
    assert len(bomb) < 100_000
    assert dropped(Decoder("raw", "json", 1 << 20, compression="zlib"), [bomb]) == "too_large"


def test_the_limit_itself_inflates():
    payload = b'"' + b"x" * 998 + b'"'
    decoder = Decoder("raw", "json", len(payload), compression="zlib")
    assert data_of(decoder, [zlib.compress(payload)])[1]["data"] == "x" * 998


@pytest.mark.parametrize("data", [b"not zlib", zlib.compress(b'"abc"')[:-3]])
def test_broken_or_cut_compression_is_dropped(data):
    assert dropped(Decoder("raw", "json", BIG, compression="zlib"), [data]) == "bad_compression"


# jupyter


KEY = b"a0436f6c-1916-498b-8eb9-e81ab9368e84"


def jupyter_message(topic: bytes, msg_type: str, content: dict, key: bytes = KEY) -> list[bytes]:
    header = orjson.dumps({"msg_id": "1", "msg_type": msg_type, "session": "s", "version": "5.3"})
    parts = [header, b"{}", b"{}", orjson.dumps(content)]
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return [topic, b"<IDS|MSG>", mac.hexdigest().encode(), *parts]


def test_a_signed_jupyter_stream_message():
    decoder = Decoder("jupyter", "json", BIG, key=KEY)
    message = jupyter_message(b"stream.stdout", "stream", {"name": "stdout", "text": "hi\n"})
    topic, fields, _ = data_of(decoder, [*message, b"\x00\x01"])
    assert topic == b"stream.stdout"
    data = fields["data"]
    assert data["header"]["msg_type"] == "stream" and data["content"]["text"] == "hi\n"
    assert data["parent_header"] == {} and data["metadata"] == {} and data["buffers"] == ["AAE="]


def test_a_forged_jupyter_message_is_dropped():
    decoder = Decoder("jupyter", "json", BIG, key=KEY)
    forged = jupyter_message(b"stream", "stream", {"text": "rm -rf"}, key=b"not the key")
    assert dropped(decoder, forged) == "bad_signature"
    tampered = jupyter_message(b"stream", "stream", {"text": "ok"})
    tampered[-1] = b'{"text": "changed"}'
    assert dropped(decoder, tampered) == "bad_signature"


def test_jupyter_without_a_key_is_read_unverified_and_without_identities_has_no_topic():
    message = jupyter_message(b"x", "status", {"execution_state": "idle"})[1:]
    topic, fields, _ = data_of(Decoder("jupyter", "json", BIG), message)
    assert topic == b"" and fields["data"]["content"] == {"execution_state": "idle"}


@pytest.mark.parametrize(
    "frames", [[b"t", b"{}"], [b"<IDS|MSG>", b"sig", b"{}", b"{}"]], ids=["no-delimiter", "short"]
)
def test_malformed_jupyter_messages_are_bad_frames(frames):
    assert dropped(Decoder("jupyter", "json", BIG), frames) == "bad_frames"


def test_a_jupyter_part_that_is_not_json_is_invalid_json():
    message = jupyter_message(b"t", "stream", {})
    message[4] = b"{not json"
    assert dropped(Decoder("jupyter", "json", BIG), message) == "invalid_json"


# Any frames, any configuration: a defined outcome


configurations = st.fixed_dictionaries(
    {
        "framing": st.sampled_from(FRAMINGS),
        "payload": st.sampled_from(PAYLOADS),
        "frames": st.lists(st.sampled_from(FRAME_KINDS), min_size=1, max_size=4).filter(
            lambda f: f[0] not in SEQ_KINDS
        ),
        "separator": st.sampled_from([b" ", b":", b"::"]),
        "compression": st.sampled_from(COMPRESSIONS),
        "key": st.sampled_from([b"", KEY]),
    }
)
frame = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"<IDS|MSG>", b"{}", b"[1, 2]", b'"x"', b"\x00\x00\x00\x01"]),
    st.binary(max_size=30).map(zlib.compress),
    st.builds(msgpack.packb, st.one_of(st.integers(-(2**63), 2**64 - 1), st.text(), st.binary())),
)


@settings(max_examples=500, deadline=None)
@given(configurations, st.lists(frame, max_size=9), st.integers(1, 200))
def test_any_frames_give_an_envelope_or_a_reason(config, frames, limit):
    decoder = Decoder(config.pop("framing"), config.pop("payload"), limit, **config)
    try:
        topic, fragment, seq = decoder(frames)
    except Dropped as exc:
        assert exc.kind in {
            "too_large",
            "bad_frames",
            "invalid_json",
            "invalid_utf8",
            "invalid_msgpack",
            "bad_compression",
            "bad_signature",
        }
        return
    envelope = orjson.loads(b'{"data":' + fragment + b"}")
    assert isinstance(topic, bytes)
    assert seq is None or envelope["upstream_seq"] == seq
    assert set(envelope) <= {"data", "encoding", "parts", "upstream_seq"}
