"""Unit tests of the gateway's policies: token bucket, circuit breaker, version choice,
replica choice, API keys, backends file, pins, file-type sniffing."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from docsum.common.errors import BadRequest
from docsum.common.sniff import sniff
from docsum.gateway.auth import KeyRing, KeysFileError, hash_key, parse_keys, presented_key
from docsum.gateway.backends import BackendsConfigError, parse_backends
from docsum.gateway.breaker import CircuitBreaker, State
from docsum.gateway.limits import RateLimiter, TokenBucket
from docsum.gateway.pins import parse_pins
from docsum.gateway.routing import Backend, choose_version, pick_backend
from docsum.gateway.watch import ChangeDetector


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- token bucket ---------------------------------------------------------------------------


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0, tokens=3.0, updated=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # one token comes back in 1/rate s
    assert bucket.take(0.5) == 0.0
    assert bucket.take(0.5) > 0
    assert bucket.take(10.0) == 0.0  # refilled, but never above the burst:
    assert [bucket.take(10.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(0.5)]


def test_rate_limiter_is_per_caller_and_says_when_to_retry() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=0.5, burst=2, clock=clock)
    assert [limiter.check("a") for _ in range(2)] == [0, 0]
    assert limiter.check("a") == 2  # 0.5 token/s → 2 s until the next one
    assert limiter.check("b") == 0  # another key has its own bucket
    clock.now += 2.0
    assert limiter.check("a") == 0


def test_rate_limit_headers_say_the_quota_left_and_when_it_is_full() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=0.5, burst=2, clock=clock)
    quota = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
    assert [limiter.headers("new")[h] for h in quota] == ["2", "2", "0"]
    limiter.check("a")
    assert [limiter.headers("a")[h] for h in quota] == ["2", "1", "2"]
    limiter.check("a")
    clock.now += 1.0  # half a token back: none whole, 3 s to full
    assert [limiter.headers("a")[h] for h in quota] == ["2", "0", "3"]


# --- circuit breaker ------------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures_and_half_opens_for_one_trial() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, open_s=5.0, clock=clock)
    breaker.failure()
    breaker.failure()
    breaker.success()  # consecutive: a success resets the count
    breaker.failure()
    breaker.failure()
    assert breaker.state is State.CLOSED and breaker.acquire()
    breaker.failure()
    assert breaker.state is State.OPEN and not breaker.available() and not breaker.acquire()
    clock.now += 5.0
    assert breaker.state is State.HALF_OPEN
    assert breaker.acquire()  # the one trial call
    assert not breaker.acquire()  # nobody else meanwhile
    breaker.failure()  # the trial failed: open again, for another open_s
    assert breaker.state is State.OPEN
    clock.now += 5.0
    assert breaker.acquire()
    breaker.success()
    assert breaker.state is State.CLOSED and breaker.acquire() and breaker.acquire()


def test_breaker_frees_the_trial_when_the_caller_left() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, open_s=1.0, clock=clock)
    breaker.failure()
    clock.now += 1.0
    assert breaker.acquire() and not breaker.acquire()
    breaker.abandon()
    assert breaker.acquire()


# --- version and replica choice -------------------------------------------------------------


def test_weighted_version_choice_follows_the_weights() -> None:
    rng = random.Random(7)
    counts = Counter(
        choose_version({"stable": 90, "canary": 10}, {"stable", "canary"}, rng)
        for _ in range(20_000)
    )
    assert counts["canary"] / 20_000 == pytest.approx(0.10, abs=0.01)


def test_version_choice_skips_zero_weights_and_unusable_versions() -> None:
    rng = random.Random(1)
    weights = {"blue": 0.0, "green": 100.0}
    assert {choose_version(weights, {"blue", "green"}, rng) for _ in range(200)} == {"green"}
    # green's backends all have open circuits: blue has weight 0, so nothing is left.
    assert choose_version(weights, {"blue"}, rng) is None
    # a canary whose backends are all broken leaves all traffic to stable.
    assert {choose_version({"s": 90, "c": 10}, {"s"}, rng) for _ in range(200)} == {"s"}


def _backend(url: str, outstanding: int = 0, ready: bool | None = True) -> Backend:
    return Backend(url, "stable", CircuitBreaker(1, 60.0), outstanding=outstanding, ready=ready)


def test_least_outstanding_replica_is_picked() -> None:
    rng = random.Random(3)
    a, b, c = _backend("a", 3), _backend("b", 1), _backend("c", 2)
    assert {pick_backend([a, b, c], set(), rng).url for _ in range(50)} == {"b"}  # type: ignore[union-attr]
    b.outstanding = 2  # a tie between b and c is broken at random: both get picked
    assert {pick_backend([a, b, c], set(), rng).url for _ in range(50)} == {"b", "c"}  # type: ignore[union-attr]


def test_replica_choice_avoids_tried_open_and_unready_backends() -> None:
    rng = random.Random(5)
    a, b = _backend("a"), _backend("b", outstanding=5)
    assert pick_backend([a, b], {id(a)}, rng) is b  # a retry goes to another replica
    assert pick_backend([a], {id(a)}, rng) is a  # unless there is no other
    a.ready = False
    assert pick_backend([a, b], set(), rng) is b  # the last probe said a is not ready
    b.breaker.failure()  # b's circuit opens (threshold 1)
    assert pick_backend([a, b], set(), rng) is a  # a stale "not ready" beats no call at all
    a.breaker.failure()
    assert pick_backend([a, b], set(), rng) is None


# --- API keys -------------------------------------------------------------------------------


def test_keys_file_parsing() -> None:
    text = f"# production keys\n\nalice:{hash_key('k1')}\n  bob:{hash_key('k2').upper()}  \n"
    keys = parse_keys(text)
    assert set(keys) == {"alice", "bob"}
    ring = KeyRing.from_mapping(keys)
    assert ring.identify("k1") == "alice" and ring.identify("k2") == "bob"
    assert ring.identify("k3") is None and ring.identify("") is None and ring.identify(None) is None
    assert ring.identify(hash_key("k1")) is None  # the hash is not a key


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("alice:" + "0" * 63, "line 1"),
        ("alice " + "0" * 64, "line 1"),
        ("# ok\nalice:k1-in-clear", "line 2"),
        (f"a:{'0' * 64}\na:{'1' * 64}", "used twice"),
    ],
)
def test_bad_keys_files_are_refused_naming_the_line_but_not_the_key(
    text: str, complaint: str
) -> None:
    with pytest.raises(KeysFileError, match=complaint) as err:
        parse_keys(text)
    assert "k1-in-clear" not in str(err.value)


def test_presented_key_comes_from_either_header() -> None:
    assert presented_key("abc", None) == "abc"
    assert presented_key(None, "xyz") == "xyz"
    assert presented_key(" ", None) is None
    assert presented_key(None, None) is None


# --- backends file --------------------------------------------------------------------------


def test_backends_file_parsing_groups_by_version() -> None:
    specs = parse_backends(
        {
            "ocr": [{"url": "http://ocr:8081/", "version": "stable", "weight": 90}],
            "summarizer": [
                {"url": "http://s1:8082", "version": "stable", "weight": 90},
                {"url": "http://s2:8082", "version": "canary", "weight": 10},
            ],
        }
    )
    assert specs["ocr"][0].url == "http://ocr:8081"
    assert [(s.version, s.weight) for s in specs["summarizer"]] == [("stable", 90), ("canary", 10)]


def _both(ocr: list[dict[str, object]], **extra: object) -> dict[str, object]:
    return {"ocr": ocr, "summarizer": [{"url": "http://b"}], **extra}


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ([], "JSON object"),
        ({"ocr": [{"url": "http://a"}]}, "'summarizer' needs"),
        (_both([{"url": "ftp://a"}]), "not an http"),
        (_both([{"url": "http://a", "weight": 0}]), "every weight is 0"),
        (_both([{"url": "http://a", "weight": -1}]), "weight"),
        (_both([{"url": "http://a"}], x=[]), "unknown"),
        (_both([{"url": "http://a", "colour": 1}]), "colour"),
        (_both([{"url": "http://a"}, {"url": "http://a/"}]), "twice"),
    ],
)
def test_bad_backends_files_are_refused_with_a_reason(data: object, complaint: str) -> None:
    with pytest.raises(BackendsConfigError, match=complaint):
        parse_backends(data)


def test_change_detector_notices_rewrites_and_replacements(tmp_path: Path) -> None:
    path = tmp_path / "backends.json"
    path.write_text("a")
    detector = ChangeDetector([path])
    assert detector.changed() == []
    path.write_text("bb")
    assert detector.changed() == [path]
    assert detector.changed() == []
    other = tmp_path / "new"
    other.write_text("cc")
    other.replace(path)  # what a ConfigMap update does (a new file swapped in)
    assert detector.changed() == [path]


# --- pins and sniffing ----------------------------------------------------------------------


def test_pins_header_forms() -> None:
    assert parse_pins(None).for_upstream("ocr") is None
    assert parse_pins("canary").for_upstream("summarizer") == "canary"
    pins = parse_pins("ocr=canary, summarizer=stable")
    assert pins.for_upstream("ocr") == "canary" and pins.for_upstream("summarizer") == "stable"
    with pytest.raises(BadRequest, match="upstream"):
        parse_pins("gpu=canary")


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "png"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 20, "jpeg"),
        (b"II*\x00" + b"\0" * 20, "tiff"),
        (b"MM\x00*" + b"\0" * 20, "tiff"),
        (b"BM" + b"\0" * 40, "bmp"),
        (b"RIFF\0\0\0\0WEBPVP8 ", "webp"),
        (b"%PDF-1.7\n", "pdf"),
        (b"\xef\xbb\xbfjunk\n%PDF-1.4\n", "pdf"),
        (b"GIF89a" + b"\0" * 20, None),
        (b"hello, world", None),
        (b"", None),
    ],
)
def test_sniff_by_magic_bytes(head: bytes, kind: str | None) -> None:
    assert sniff(head) == kind
