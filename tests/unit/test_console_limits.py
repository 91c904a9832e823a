"""The console's sign-in limiter (pure): windows, lockouts and its memory bound."""

from __future__ import annotations

import pytest

from nf.oam.console.limits import SignInLimiter


def test_locks_at_the_limit_and_frees_after_the_lockout() -> None:
    lim = SignInLimiter(max_failures=3, window_s=60, lockout_s=30, max_tracked=100)
    subj = ("address 192.0.2.1", "key abc")
    assert lim.failed(subj, 0) == [] and lim.failed(subj, 1) == []
    assert lim.retry_after(subj, 2) is None
    assert lim.failed(subj, 2) == list(subj)
    assert lim.retry_after(subj, 2) == 30
    assert lim.retry_after(subj, 31.5) == 1  # rounded up, never 0
    assert lim.retry_after(["address 192.0.2.2"], 10) is None  # others are not locked
    assert lim.retry_after(subj, 32) is None
    # Still in the first window (started at 0): one more failure locks again at once.
    assert lim.failed(subj, 40) == list(subj)
    # A new window after both are over.
    assert lim.retry_after(subj, 100) is None
    assert lim.failed(subj, 100) == []


def test_the_window_starts_at_the_first_failure() -> None:
    lim = SignInLimiter(max_failures=2, window_s=60, lockout_s=60, max_tracked=100)
    assert lim.failed(["a"], 0) == []
    assert lim.failed(["a"], 61) == []  # the first one is out of its window
    assert lim.failed(["a"], 62) == ["a"]


def test_memory_is_bounded_and_a_busy_attacker_stays_locked() -> None:
    lim = SignInLimiter(max_failures=2, window_s=60, lockout_s=600, max_tracked=50)
    lim.failed(["attacker"], 0)
    lim.failed(["attacker"], 0)
    for i in range(10_000):
        lim.failed([f"address 10.0.{i // 256}.{i % 256}"], 1)
        if i % 40 == 0:  # the attacker keeps trying: refused, and kept as recent
            assert lim.retry_after(["attacker"], 1) is not None
    assert len(lim) <= 50
    assert lim.retry_after(["attacker"], 2) == 598


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        SignInLimiter(0, 60, 60, 10)
