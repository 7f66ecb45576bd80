"""The pure parts of realtime: subscription tokens, the subscriber hub, the frames sent."""

from __future__ import annotations

import json

import jwt
import msgspec
import pytest

from headrace.core.clock import FakeClock
from headrace.protocol.accounts import AccountKeys
from headrace.realtime.chunks import CHUNK_BYTES, ChunkSplitter
from headrace.realtime.hub import QUEUE_LIMIT, Hub
from headrace.realtime.messages import Published, decode, encode, to_wire
from headrace.realtime.tokens import TTL_MS, InvalidToken, TokenIssuer, TopicClaim

KEYS = AccountKeys.of(
    None, signing_keys=[("acme", "signkey-prod-aa"), ("globex", "signkey-prod-bb")]
)


def _message(account: str = "acme", topic: str = "status", data: object = None) -> Published:
    return Published(
        account=account,
        channel="orders",
        topic=topic,
        data=msgspec.Raw(json.dumps(data or {"n": 1}).encode()),
        created_at="2026-01-01T00:00:00.000Z",
        run_id="01RUN",
    )


def test_a_token_grants_its_account_the_topics_it_names_until_it_expires() -> None:
    clock = FakeClock()
    issuer = TokenIssuer(KEYS)
    token = issuer.issue(
        "acme", [TopicClaim("orders", "status"), TopicClaim("orders", "eta")], clock.now_ms()
    )
    grant = issuer.verify(token, clock.now_ms() + TTL_MS - 1000)
    assert grant.account == "acme"
    assert grant.topics == {("orders", "status"), ("orders", "eta")}
    # As Inngest's: issuer rt.inngest.com, HS256, a minute to live.
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == "rt.inngest.com" and claims["sub"] == "acme"
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    with pytest.raises(InvalidToken, match="expired"):
        issuer.verify(token, clock.now_ms() + TTL_MS)


def test_a_token_relabelled_for_another_account_or_signed_elsewhere_is_refused() -> None:
    now = FakeClock().now_ms()
    issuer = TokenIssuer(KEYS)
    token = issuer.issue("acme", [TopicClaim("orders", "status")], now)
    claims = jwt.decode(token, options={"verify_signature": False})
    acme_secret = issuer._secret("acme")
    # Signed with acme's secret but naming globex: globex's secret does not verify it.
    relabelled = jwt.encode({**claims, "sub": "globex"}, acme_secret, "HS256")
    with pytest.raises(InvalidToken):
        issuer.verify(relabelled, now)
    # Another server with other keys for the same account names.
    other = TokenIssuer(AccountKeys.of(None, signing_keys=[("acme", "signkey-prod-cc")]))
    with pytest.raises(InvalidToken):
        other.verify(token, now)
    for bad in ("", "not-a-jwt", jwt.encode({**claims, "sub": "nobody"}, acme_secret, "HS256")):
        with pytest.raises(InvalidToken):
            issuer.verify(bad, now)
    # Every replica with the same keys verifies it.
    assert TokenIssuer(KEYS).verify(token, now).account == "acme"


def test_the_hub_gives_a_message_to_its_account_channel_and_topic_subscribers_only() -> None:
    hub = Hub()
    acme = hub.subscribe("acme", [("orders", "status")])
    globex = hub.subscribe("globex", [("orders", "status")])
    other_topic = hub.subscribe("acme", [("orders", "eta")])
    assert hub.deliver(_message()) == 1
    assert acme.frames.qsize() == 1
    assert globex.frames.empty() and other_topic.frames.empty()
    hub.unsubscribe(acme)
    assert hub.deliver(_message()) == 0


def test_a_subscriber_too_far_behind_is_marked_for_closing() -> None:
    hub = Hub()
    slow = hub.subscribe("acme", [("orders", "status")])
    for _ in range(QUEUE_LIMIT):
        hub.deliver(_message())
    assert not slow.overflowed
    assert hub.deliver(_message()) == 0
    assert slow.overflowed


def test_the_frame_is_the_sdk_data_message_without_the_account() -> None:
    frame = json.loads(to_wire(_message(data={"ok": [1, 2]})))
    assert frame == {
        "kind": "data",
        "channel": "orders",
        "topic": "status",
        "data": {"ok": [1, 2]},
        "created_at": "2026-01-01T00:00:00.000Z",
        "run_id": "01RUN",
    }
    assert decode(encode(_message())) == _message()


def test_a_chunk_frame_names_its_stream_channel_and_topic() -> None:
    chunk = msgspec.structs.replace(
        _message(), kind="chunk", data=msgspec.Raw(b'"piece"'), stream_id="s1"
    )
    assert json.loads(to_wire(chunk)) == {
        "kind": "chunk",
        "channel": "orders",
        "topic": "status",
        "data": "piece",
        "created_at": "2026-01-01T00:00:00.000Z",
        "run_id": "01RUN",
        "stream_id": "s1",
    }
    assert decode(encode(chunk)) == chunk


def test_a_stream_is_cut_into_whole_characters_of_at_most_a_chunk_each() -> None:
    splitter = ChunkSplitter(size=4)
    # "✓" is three bytes: the first read ends inside it, so it waits for the next.
    check = "✓".encode()
    assert splitter.feed(b"ab" + check[:1]) == ["ab"]
    assert splitter.feed(check[1:] + b"cdefg") == ["✓c", "defg"]
    assert splitter.feed("éé€".encode()) == ["éé", "€"]
    splitter.finish()
    assert ChunkSplitter().feed(b"x" * (CHUNK_BYTES + 1)) == ["x" * CHUNK_BYTES, "x"]


def test_a_stream_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(UnicodeDecodeError):
        ChunkSplitter().feed(b"ok \xff")
    cut = ChunkSplitter()
    assert cut.feed("✓".encode()[:2]) == []
    with pytest.raises(UnicodeDecodeError):
        cut.finish()


def test_teed_text_goes_to_subscribers_as_it_came() -> None:
    teed = msgspec.structs.replace(
        _message(), kind="raw", data=msgspec.Raw(b'"event: x\\ndata: {}\\n\\n"')
    )
    assert to_wire(teed) == b"event: x\ndata: {}\n\n"
