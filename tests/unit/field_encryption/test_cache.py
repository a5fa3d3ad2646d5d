"""Data-key cache limits (age, uses, bytes) and sharing between threads."""

from __future__ import annotations

import threading

import pytest

from field_encryption import CacheLimits, DataKeyCache, FieldEncryption
from field_encryption.errors import ConfigurationError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(local_keyring, limits: CacheLimits, clock: Clock | None = None):
    cache = DataKeyCache(limits, clock=clock) if clock else DataKeyCache(limits)
    fe = FieldEncryption(keyring=local_keyring, namespace="c", cache=cache)
    return fe, cache


def key_of(fe, n: int = 1) -> str:
    record = {"_id": "1", **{f"f{i}": "v" for i in range(n)}}
    return fe.encrypt_fields(record, [f"f{i}" for i in range(n)])["_fe"]["k"]


def test_max_uses_counts_fields(local_keyring) -> None:
    # a format-2 record uses the data key once per random-mode field, and once more for
    # its record nonce
    fe, cache = make(local_keyring, CacheLimits(max_uses=7))
    first = key_of(fe, 3)  # 4 uses
    assert key_of(fe, 2) == first  # 3 more: at the limit
    assert key_of(fe, 1) != first  # 2 more would pass it: a new key
    assert cache.misses == 2


def test_max_age(local_keyring) -> None:
    clock = Clock()
    fe, _ = make(local_keyring, CacheLimits(max_age=60), clock)
    first = key_of(fe)
    clock.now += 59
    assert key_of(fe) == first
    clock.now += 2
    assert key_of(fe) != first


def test_max_bytes(local_keyring) -> None:
    fe, _ = make(local_keyring, CacheLimits(max_bytes=100))
    big = {"_id": "1", "a": "x" * 60}
    first = fe.encrypt_fields(big, ["a"])["_fe"]["k"]
    second = fe.encrypt_fields(big, ["a"])["_fe"]["k"]
    assert first != second


def test_limits_are_validated() -> None:
    with pytest.raises(ConfigurationError):
        CacheLimits(max_uses=2**32)
    with pytest.raises(ConfigurationError):
        CacheLimits(max_uses=0)
    with pytest.raises(ConfigurationError):
        CacheLimits(max_age=0)
    assert CacheLimits().max_uses <= 2**30


def test_threads_share_the_cache_without_exceeding_uses(local_keyring) -> None:
    calls: list[int] = []
    original = local_keyring.generate

    def generate(context):
        calls.append(1)
        return original(context)

    local_keyring.generate = generate  # type: ignore[method-assign]
    # each record uses the key twice (one field, one record nonce): 500 records a key
    fe, _cache = make(local_keyring, CacheLimits(max_uses=1000))
    per_thread, threads = 500, 8
    seen: dict[str, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def work() -> None:
        barrier.wait()
        local: dict[str, int] = {}
        for i in range(per_thread):
            k = fe.encrypt_fields({"_id": str(i), "a": "v"}, ["a"])["_fe"]["k"]
            local[k] = local.get(k, 0) + 1
        with lock:
            for k, v in local.items():
                seen[k] = seen.get(k, 0) + v

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert sum(seen.values()) == per_thread * threads
    assert max(seen.values()) <= 500  # no key used past its limit
    assert len(seen) == len(calls) == per_thread * threads // 500
