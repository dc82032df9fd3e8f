"""The adaptive rate limiter and backoff, driven by a manual clock (no real time passes)."""

from __future__ import annotations

import random

import pytest

from orchestrator.backoff import RetryPolicy
from orchestrator.ratelimit import AdaptiveRateLimiter, LimiterSettings, Ticket
from tests.clocks import ManualClock
from tests.limiter_sim import jain, settle_time, simulate


def limiter(clock: ManualClock, **overrides: float) -> AdaptiveRateLimiter:
    settings = LimiterSettings(**{"initial_rate": 10.0, "burst": 1.0, **overrides})
    return AdaptiveRateLimiter(settings, clock)


async def test_paces_calls_at_the_current_rate() -> None:
    """1. 21 calls at 10/s, burst 1: the first is free, the next 20 take 2 s of clock time."""
    clock = ManualClock()
    rl = limiter(clock)
    start = clock.now()
    tickets = [await rl.acquire() for _ in range(21)]
    assert clock.now() - start == pytest.approx(2.0)
    gaps = [b.sent_at - a.sent_at for a, b in zip(tickets, tickets[1:], strict=False)]
    assert min(gaps) == pytest.approx(0.1)


async def test_throttle_cuts_rate_multiplicatively_once_per_episode() -> None:
    """1. Throttle a call sent before any cut: rate drops to beta * rate.
    2. A second throttle of a call sent before that cut does not cut again.
    3. A throttle of a call sent after the cut cuts again."""
    clock = ManualClock()
    rl = limiter(clock, initial_rate=20.0, beta=0.5)
    early = [await rl.acquire() for _ in range(20)]  # measured rate ~= 20/s
    rl.on_throttle(early[-1])
    assert rl.rate == pytest.approx(10.0, rel=0.1)
    rl.on_throttle(early[-2])
    assert rl.rate == pytest.approx(10.0, rel=0.1)
    assert rl.cuts == 1 and rl.throttles == 2
    clock.advance(0.01)
    later = await rl.acquire()
    rl.on_throttle(later)
    assert rl.cuts == 2
    assert rl.rate < 10.0


async def test_cut_uses_measured_rate_when_rate_was_never_reached() -> None:
    """A limiter allowed 100/s but sending 5/s is cut from 5/s, not from 100/s."""
    clock = ManualClock()
    rl = limiter(clock, initial_rate=100.0, beta=0.7, window=1.0)
    ticket = Ticket(clock.now(), 0.0)
    for _ in range(5):
        ticket = await rl.acquire()
        clock.advance(0.2)
    rl.on_throttle(ticket)
    assert rl.rate == pytest.approx(0.7 * 5, rel=0.25)


async def leave_slow_start(rl: AdaptiveRateLimiter, clock: ManualClock, calls: int) -> None:
    """Send ``calls`` calls at the rate with nothing accepted, throttle the last one (the first
    cut, leaving slow start), then cut once more: the limiter is in its CUBIC recovery with
    w_max = the rate it was cut from."""
    tickets = [await rl.acquire() for _ in range(calls)]
    rl.on_throttle(tickets[-1])
    clock.advance(0.01)
    rl.on_throttle(await rl.acquire())


async def test_cubic_recovery_reaches_previous_max_then_probes_beyond() -> None:
    """After a cut from w_max, success grows the rate back to w_max at t=K, then above it;
    the growth is absolute: K = cbrt((w_max - beta * w_max) / c)."""
    clock = ManualClock()
    c, beta = 1.0, 0.8
    rl = limiter(clock, initial_rate=20.0, beta=beta, cubic_c=c)
    await leave_slow_start(rl, clock, 20)
    w_max = rl.rate / beta
    k = ((w_max - rl.rate) / c) ** (1 / 3)
    clock.advance(k / 2)
    rl.on_success(Ticket(clock.now(), 0.0))
    assert beta * w_max < rl.rate < w_max
    clock.advance(k / 2)
    rl.on_success(Ticket(clock.now(), 0.0))
    assert rl.rate == pytest.approx(w_max, rel=0.01)
    clock.advance(2.0)
    rl.on_success(Ticket(clock.now(), 0.0))
    assert rl.rate == pytest.approx(w_max + c * 8, rel=0.01)


async def test_growth_is_absolute_so_unequal_clients_converge() -> None:
    """Two clients cut at 30/s and 10/s regrow in calls/s, not in proportion: eight seconds
    later their ratio is well below 3 (a proportional growth would keep it at 3)."""
    clock = ManualClock()
    big, small = limiter(clock, initial_rate=30.0), limiter(clock, initial_rate=10.0)
    for rl, n in ((big, 30), (small, 10)):
        await leave_slow_start(rl, clock, n)
    clock.advance(8.0)
    for rl in (big, small):
        rl.on_success(Ticket(clock.now(), 0.0))
    assert big.rate / small.rate < 2.0


async def test_a_risen_limit_is_found_by_slow_start() -> None:
    """In recovery, once the service accepts clearly more than the rate last throttled
    (rise_margin above w_max over the last second), the limiter doubles again instead of
    creeping up the cubic; the next throttle leaves slow start from the accepted rate."""
    clock = ManualClock()
    rl = limiter(clock, initial_rate=10.0, beta=0.8, cubic_c=0.3)
    await leave_slow_start(rl, clock, 10)
    plateau = rl.rate / 0.8
    clock.advance(5.0)
    for _ in range(200):  # the limit rose: every call is accepted
        rl.on_success(await rl.acquire())
    assert rl.rate > 4 * plateau  # a cubic with c=0.3 would be near plateau + 0.3 * 5**3 / 8
    ticket = await rl.acquire()
    accepted = rl.accepted_rate(1.0)
    rl.on_throttle(ticket)
    assert rl.rate == pytest.approx(accepted, rel=0.05)


async def test_fast_convergence_gives_up_share_when_cut_below_previous_max() -> None:
    """A second cut at a lower rate than the first sets w_max between the two."""
    clock = ManualClock()
    rl = limiter(clock, initial_rate=20.0, beta=0.8)
    tickets = [await rl.acquire() for _ in range(20)]
    rl.on_throttle(tickets[-1])  # w_max 20, rate 16
    clock.advance(0.01)
    rl.on_throttle(await rl.acquire())  # estimate 16 < 20: w_max = 16 * 0.9
    assert rl.rate == pytest.approx(16 * 0.8, rel=0.05)
    clock.advance(10.0)
    rl.on_success(Ticket(clock.now(), 0.0))
    assert rl.rate > 16 * 0.9  # probing again after the plateau


async def test_cut_starts_from_the_accepted_rate() -> None:
    """A client sending 20/s of which 10/s succeed is cut from 10/s, not 20/s."""
    clock = ManualClock()
    rl = limiter(clock, initial_rate=20.0, max_rate=20.0, beta=0.8, rise_margin=10.0)
    await leave_slow_start(rl, clock, 20)
    ticket = Ticket(clock.now(), 0.0)
    for i in range(200):  # ~10 s at up to 20/s, every other call accepted
        ticket = await rl.acquire()
        if i % 2:
            rl.on_success(ticket)
    assert rl.rate == 20.0
    rl.on_throttle(ticket)
    assert rl.rate == pytest.approx(0.8 * 10, rel=0.1)


async def test_slow_start_doubles_only_while_demand_fills_the_rate() -> None:
    """1. Idle successes do not raise the rate. 2. Sending at the rate doubles it."""
    clock = ManualClock()
    rl = limiter(clock, initial_rate=10.0)
    rl.on_success(Ticket(clock.now(), 0.0))
    assert rl.rate == 10.0
    tickets = [await rl.acquire() for _ in range(10)]
    rl.on_success(tickets[-1])
    assert rl.rate == 20.0


async def test_rate_is_bounded() -> None:
    clock = ManualClock()
    rl = limiter(clock, initial_rate=1.0, min_rate=0.5, max_rate=4.0)
    for _ in range(10):
        rl.on_throttle(Ticket(clock.now(), 0.0))
        clock.advance(1)
    assert rl.rate == 0.5
    clock.advance(10)
    for _ in range(100):  # demand at the rate: the limit rose, slow start up to max_rate
        rl.on_success(await rl.acquire())
    assert rl.rate == 4.0


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    policy = RetryPolicy(max_attempts=5, base=0.1, cap=1.0, rng=random.Random(7))
    assert [policy.ceiling(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    delays = [policy.delay(4) for _ in range(2000)]
    assert 0.0 <= min(delays) < 0.05 and 0.75 < max(delays) <= 0.8
    assert sum(delays) / len(delays) == pytest.approx(0.4, rel=0.1)
    assert policy.should_retry(4) and not policy.should_retry(5)


# --- the control law against a simulated token-bucket service (tests/limiter_sim.py) --------
# Deterministic (manual clock, fixed seeds): these fail if a change to the limiter loses
# goodput, throttles more, adapts slower or splits a shared limit unfairly. The benchmark
# suite (`make bench`) measures the same against the real emulator.


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_simulated_lone_client_holds_the_limit_with_few_throttles(seed: int) -> None:
    run = simulate([(0.0, 20.0)], 60.0, seed=seed)
    assert run.goodput(0, 5.0, 60.0) >= 0.95 * 20.0
    assert run.throttles / run.attempts <= 0.02


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_simulated_client_follows_a_limit_that_drops_and_rises(seed: int) -> None:
    """R steps 20 → 5 → 40: settled within 2 s after the drop and 5 s after the rise."""
    run = simulate([(0.0, 20.0), (15.0, 5.0), (30.0, 40.0)], 45.0, seed=seed)
    drop = settle_time(run.successes[0], 15.0, 30.0, 5.0)
    rise = settle_time(run.successes[0], 30.0, 45.0, 40.0)
    assert drop is not None and drop <= 2.0
    assert rise is not None and rise <= 5.0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_simulated_clients_converge_to_equal_shares(seed: int) -> None:
    """Three clients started 1 s apart on one limit, no coordination: Jain's index of their
    goodput over the minute after the last start ≥ 0.95, and together they use ≥ 0.9·R."""
    run = simulate([(0.0, 20.0)], 62.0, clients=3, starts=[0.0, 1.0, 2.0], seed=seed)
    shares = [run.goodput(client, 2.0, 62.0) for client in range(3)]
    assert jain(shares) >= 0.95
    assert sum(shares) >= 0.9 * 20.0
