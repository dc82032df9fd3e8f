"""The redrive's rate cap (``--rate``): :class:`Pacer` spaces the sends out on the injected
monotonic clock, so that tests pace without sleeping."""

from __future__ import annotations

from orchestrator.clock import Clock
from orchestrator.errors import ConfigurationError
from orchestrator.sqs import MAX_BATCH


class Pacer:
    """Holds sends to ``rate`` messages per second: a batch of ``n`` waits until the messages
    sent before it are due (``start + sent / rate``); batches are at most ``rate`` messages."""

    def __init__(self, rate: float | None, clock: Clock) -> None:
        if rate is not None and rate <= 0:
            raise ConfigurationError(f"--rate must be positive, not {rate}")
        self._rate = rate
        self._clock = clock
        self._start: float | None = None
        self._sent = 0

    @property
    def batch_size(self) -> int:
        return MAX_BATCH if self._rate is None else max(1, min(MAX_BATCH, int(self._rate)))

    async def wait(self, count: int) -> None:
        if self._rate is None:
            return
        now = self._clock.now()
        self._start = now if self._start is None else self._start
        due = self._start + self._sent / self._rate
        if due > now:
            await self._clock.sleep(due - now)
        self._sent += count
