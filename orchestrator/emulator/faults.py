"""Fault injection: which API calls fail, how, and when in the call the failure happens.

Five failure kinds, each with its own probability per API call:

* ``403``: AccessDeniedException, as AWS answers a call the caller's IAM policy does not allow
  (every AWS API can answer it; the AmplifyBackend model does not declare it): status 403,
  ``x-amzn-ErrorType: AccessDeniedException`` and a ``message``; nothing happens. Drawn first,
  because authorisation comes before anything else (it is raised from :meth:`before_effect`);
* ``reset``: the connection is aborted before anything happens (the client sees a dropped
  connection and cannot know whether the call took effect: it did not);
* ``504``: GatewayTimeoutException returned before anything happens;
* ``500``: the call takes effect (a job is created, state changes), then the answer is an
  ``InternalServiceException`` 500, the ambiguous failure a worker must reconcile;
* ``reset_after``: the call takes effect, then the connection is aborted (the client sees a
  dropped connection, as for ``reset``, but this time the call did happen).

The after-effect kinds only hit calls that succeeded; ``reset_after`` is drawn before ``500``.

Latency: ``latency`` seconds are added to every API call, plus ``latency_spike`` seconds with
probability ``latency_spike_ratio``. Faults and spikes only hit the operations in
``fault_operations`` (all operations when None); the base latency applies to every call.
Random draws happen only for knobs that are non-zero, so a seeded run is reproducible and a
fault-free run pays nothing.
"""

from __future__ import annotations

import random

from orchestrator.emulator.config import EmulatorConfig
from orchestrator.emulator.errors import ApiError

ACCESS_DENIED = "AccessDeniedException"
RESET = "reset"
GATEWAY_TIMEOUT = "504"
INTERNAL_ERROR = "500"
RESET_AFTER = "reset_after"
LATENCY_SPIKE = "latency_spike"
FAULT_KINDS = (GATEWAY_TIMEOUT, INTERNAL_ERROR, RESET, RESET_AFTER, LATENCY_SPIKE)


class FaultInjector:
    def __init__(self, cfg: EmulatorConfig, rng: random.Random) -> None:
        self._rng = rng
        self._ops = cfg.fault_operations
        self._reset = cfg.fault_reset_ratio
        self._504 = cfg.fault_504_ratio
        self._500 = cfg.fault_500_ratio
        self._reset_after = cfg.fault_reset_after_ratio
        self._403 = cfg.fault_403_ratio
        self._latency = cfg.latency
        self._spike_ratio = cfg.latency_spike_ratio
        self._spike = cfg.latency_spike

    def _targets(self, operation: str) -> bool:
        return self._ops is None or operation in self._ops

    def _hit(self, ratio: float) -> bool:
        return ratio > 0.0 and self._rng.random() < ratio

    def before_effect(self, operation: str) -> str | None:
        """``reset``, ``504`` or None: a failure decided before the call does anything.
        Raises the ``403`` fault's :class:`ApiError` itself."""
        if not self._targets(operation):
            return None
        if self._hit(self._403):
            raise access_denied(operation)
        if self._hit(self._reset):
            return RESET
        if self._hit(self._504):
            return GATEWAY_TIMEOUT
        return None

    def after_effect(self, operation: str) -> str | None:
        """``reset_after``, ``500`` or None: how a call that took effect must still fail."""
        if not self._targets(operation):
            return None
        if self._hit(self._reset_after):
            return RESET_AFTER
        if self._hit(self._500):
            return INTERNAL_ERROR
        return None

    def delay(self, operation: str) -> tuple[float, bool]:
        """Seconds to wait before answering, and whether a spike was drawn."""
        if self._targets(operation) and self._hit(self._spike_ratio):
            return self._latency + self._spike, True
        return self._latency, False


def access_denied(operation: str) -> ApiError:
    """The 403 AWS answers when IAM does not allow ``operation`` (the wording of IAM's denial)."""
    error = ApiError(
        ACCESS_DENIED,
        "User: arn:aws:sts::123456789012:assumed-role/orchestrator/emulator is not authorized"
        f" to perform: amplifybackend:{operation} because no identity-based policy allows the"
        f" amplifybackend:{operation} action (injected fault)",
    )
    error.status = 403  # undeclared in the model, so ApiError cannot look its status up
    return error
