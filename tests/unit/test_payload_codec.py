"""The payload codec (engine/codec.py) and its keys (shared/security/payload_keys.py):
round trip, rotation, tampering, the failure converter, what the runs' summaries say."""

from __future__ import annotations

import base64

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from api.codec_cors import codec_origins
from api.responses import run_link
from engine import attributes
from engine.codec import ENCODING, KEY_ID, EncryptionCodec, PayloadKeyError, data_converter
from shared.config import Settings
from shared.errors import ConfigError
from shared.security.payload_keys import new_key_entry, parse_payload_keys

SECRET = "the prompt nobody else may read"


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def test_round_trip_hides_the_text_and_names_the_key() -> None:
    codec = EncryptionCodec(parse_payload_keys(new_key_entry("k1"), source="test"))
    plain = Payload(metadata={"encoding": b"json/plain"}, data=f'"{SECRET}"'.encode())
    [sealed] = await codec.encode([plain])
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == b"k1"
    assert SECRET.encode() not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [plain]
    [again] = await codec.encode([plain])
    assert again.data != sealed.data  # a fresh nonce each time


async def test_rotation_keeps_old_runs_readable() -> None:
    old = new_key_entry("old")
    [sealed] = await EncryptionCodec(parse_payload_keys(old, source="t")).encode(
        [Payload(data=SECRET.encode())])
    rotated = EncryptionCodec(parse_payload_keys(f"{new_key_entry('new')},{old}", source="t"))
    assert rotated.active == "new"
    assert (await rotated.decode([sealed]))[0].data == SECRET.encode()
    [fresh] = await rotated.encode([Payload(data=b"x")])
    assert fresh.metadata[KEY_ID] == b"new"
    without_old = EncryptionCodec(parse_payload_keys(new_key_entry("new"), source="t"))
    with pytest.raises(PayloadKeyError, match="'old'"):
        await without_old.decode([sealed])


async def test_tampering_and_relabelling_are_refused() -> None:
    a, b = new_key_entry("a"), new_key_entry("b")
    codec = EncryptionCodec(parse_payload_keys(f"{a},{b}", source="t"))
    [sealed] = await codec.encode([Payload(data=b"hello")])
    flipped = Payload(metadata=dict(sealed.metadata),
                      data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: b"b"}, data=sealed.data)
    for bad in (flipped, relabelled):
        with pytest.raises(PayloadKeyError):
            await codec.decode([bad])


async def test_clear_payloads_pass_decode() -> None:
    codec = EncryptionCodec(parse_payload_keys(new_key_entry("k"), source="t"))
    clear = Payload(metadata={"encoding": b"json/plain"}, data=b"1")
    assert await codec.decode([clear]) == [clear]  # runs from before the codec was on


@pytest.mark.parametrize(("text", "message"), [
    ("", "no key"), ("nocolon", "entry 1"), ("bad id:AAAA", "entry 1"),
    ("k:not base64!", "not valid base64"), (f"k:{base64.b64encode(b'short').decode()}", "32"),
    (f"k:{base64.b64encode(bytes(range(32))).decode()},"
     f"k:{base64.b64encode(bytes(range(1, 33))).decode()}", "twice")],
    ids=["empty", "no-colon", "bad-id", "not-base64", "short", "twice"])  # stable ids:
# pytest-xdist needs every worker to collect the same test names
def test_bad_keys_are_named_not_shown(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_payload_keys(text, source="TOKENHUB_TEMPORAL_PAYLOAD_KEYS")
    assert "TOKENHUB_TEMPORAL_PAYLOAD_KEYS" in str(info.value)
    if ":" in text and len(text) > 40:
        assert text.split(":", 1)[1][:20] not in str(info.value)


def test_settings_read_keys_from_env_or_file(tmp_path: object) -> None:
    from pathlib import Path

    entry = new_key_entry("f1")
    path = Path(str(tmp_path)) / "keys"
    path.write_text(entry + "\n")
    assert _settings(temporal_payload_keys_file=path).read_payload_keys().active == "f1"  # type: ignore[union-attr]
    assert _settings(temporal_payload_keys=new_key_entry("e1"),
                     temporal_payload_keys_file=path).read_payload_keys().active == "e1"  # type: ignore[union-attr]
    assert _settings().read_payload_keys() is None
    with pytest.raises(ConfigError, match="tokenhub codec-key"):
        _settings(temporal_require_payload_keys=True).read_payload_keys()


async def test_failure_messages_are_encoded_attributes() -> None:
    keys = parse_payload_keys(new_key_entry("k1"), source="t")
    conv = data_converter(keys)
    assert data_converter(None).payload_codec is None
    failure = Failure()
    await conv.encode_failure(ApplicationError(SECRET, type="fatal"), failure)
    assert SECRET.encode() not in failure.SerializeToString()
    assert failure.message == "Encoded failure"
    back = await conv.decode_failure(failure)
    assert isinstance(back, ApplicationError) and back.message == SECRET


def test_summary_and_details_hold_no_message_text() -> None:
    attrs = attributes.initial(kind="chat", mode="vote", model="claude",
                               provider="fake-anthropic", api_key_id="key-7")
    summary, details = attributes.describe(attrs, {
        "messages": 2, "candidates": ["claude", "small"], "fingerprint": "f" * 64,
        "content": SECRET})
    assert summary == "chat · vote · claude · key key-7"
    assert "claude (fake-anthropic)" in details and "claude, small" in details
    assert SECRET not in details and "f" * 64 not in details


def test_run_links_default_on_only_when_the_ui_url_is_given() -> None:
    assert run_link(_settings(), "r1", "temporal") == {}  # derived URL: likely internal
    dev = _settings(env="development")
    assert run_link(dev, "r 1", "temporal") == {
        "X-TokenHub-Run-URL": "http://127.0.0.1:8233/namespaces/default/workflows/r%201"}
    given = _settings(temporal_ui_url="https://ui.example/")
    assert run_link(given, "r1", "temporal")["X-TokenHub-Run-URL"].startswith(
        "https://ui.example/namespaces/default/")
    assert run_link(given, "r1", "local") == {}
    assert run_link(_settings(temporal_ui_url="https://x", temporal_run_links=False),
                    "r1", "temporal") == {}


def test_codec_origins() -> None:
    assert codec_origins(_settings()) == {"http://127.0.0.1:8233", "http://localhost:8233"}
    assert codec_origins(_settings(temporal_ui_url="https://ui.example/x",
                                   cors_origins="https://a.example")) == {
        "https://ui.example", "https://a.example"}


def test_codec_auth_required_except_in_development() -> None:
    assert _settings().codec_auth_required
    assert not _settings(env="development").codec_auth_required
    assert _settings(env="development", codec_require_auth=True).codec_auth_required
