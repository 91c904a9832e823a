"""The console's sign-in limits (pure): a key id's window and lockout, an address's growing
and bounded delay, and the memory bound of both."""

from __future__ import annotations

import pytest

from nf.oam.console.limits import AddressDelay, KeyLockout


def test_a_key_locks_at_the_limit_and_frees_after_the_lockout() -> None:
    lim = KeyLockout(max_failures=3, window_s=60, lockout_s=30, max_tracked=100)
    assert not lim.failed("abc", 0) and not lim.failed("abc", 1)
    assert lim.retry_after("abc", 2) is None
    assert lim.failed("abc", 2)
    assert lim.retry_after("abc", 2) == 30
    assert lim.retry_after("abc", 31.5) == 1  # rounded up, never 0
    assert lim.retry_after("def", 10) is None  # other keys are not locked
    assert lim.retry_after("abc", 32) is None
    # Still in the first window (started at 0): one more failure locks again at once.
    assert lim.failed("abc", 40)
    # A new window after both are over.
    assert lim.retry_after("abc", 100) is None
    assert not lim.failed("abc", 100)


def test_a_keys_window_starts_at_its_first_failure() -> None:
    lim = KeyLockout(max_failures=2, window_s=60, lockout_s=60, max_tracked=100)
    assert not lim.failed("a", 0)
    assert not lim.failed("a", 61)  # the first one is out of its window
    assert lim.failed("a", 62)


def test_key_memory_is_bounded_and_a_busy_attacker_stays_locked() -> None:
    lim = KeyLockout(max_failures=2, window_s=60, lockout_s=600, max_tracked=50)
    lim.failed("attacked", 0)
    lim.failed("attacked", 0)
    for i in range(10_000):
        lim.failed(f"guess-{i}", 1)
        if i % 40 == 0:  # the key keeps being tried: refused, and kept as recent
            assert lim.retry_after("attacked", 1) is not None
    assert len(lim) <= 50
    assert lim.retry_after("attacked", 2) == 598


def test_an_address_delay_grows_with_each_failure_and_is_bounded() -> None:
    d = AddressDelay(base_s=0.25, max_s=10, window_s=60, max_tracked=100)
    assert d.delay_s("192.0.2.1", 0) == 0.0  # no failure yet: no delay
    seen = []
    for i in range(12):
        d.failed("192.0.2.1", i)
        seen.append(d.delay_s("192.0.2.1", i))
    assert seen[:6] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
    assert seen[6:] == [10.0] * 6  # never more than the bound
    assert d.delay_s("192.0.2.2", 12) == 0.0  # other addresses are not slowed
    for i in range(1000):  # however long it goes on
        d.failed("192.0.2.1", 12 + i / 100)
    assert d.delay_s("192.0.2.1", 30) == 10.0
    # Forgotten a window after the last failure.
    assert d.delay_s("192.0.2.1", 21.99 + 60 - 0.01) == 10.0
    assert d.delay_s("192.0.2.1", 22 + 60) == 0.0


def test_address_memory_is_bounded() -> None:
    d = AddressDelay(base_s=1, max_s=8, window_s=600, max_tracked=50)
    for _ in range(4):
        d.failed("attacker", 0)
    for i in range(10_000):
        d.failed(f"10.0.{i // 256}.{i % 256}", 1)
        if i % 40 == 0:  # the attacker keeps trying: slowed, and kept as recent
            assert d.delay_s("attacker", 1) == 8
    assert len(d) <= 50


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        KeyLockout(0, 60, 60, 10)
    with pytest.raises(ValueError, match="at least the base"):
        AddressDelay(2, 1, 60, 10)
