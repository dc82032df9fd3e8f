"""AmplifyBackend calls: rate limited, retried, timed, counted, and mapped to the error tree.

Every call from the dispatcher and the tracker goes through :meth:`AmplifyApi.call`: take a
token from the shared adaptive limiter, make one attempt with the aiobotocore client (whose own
retries are off), feed the limiter, and on a transient error back off (capped, full jitter) and
try again. A call that may already have taken effect (5xx, lost connection) is not retried for
a mutation: the caller gets an ambiguous :class:`TransientError` and must reconcile first.

Each call is one CLIENT span (:meth:`orchestrator.spans.Tracer.api_call`) over all its
attempts: a token wait, a throttle and a retry are events on it; a call that fails for good
sets its status to ERROR with the (scrubbed) error.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from opentelemetry.trace import Span

from orchestrator import logs, servicemodel
from orchestrator.aws import map_error
from orchestrator.backoff import RetryPolicy
from orchestrator.clock import Clock, MonotonicClock
from orchestrator.errors import OrchestratorError, RetriesExhausted, Throttled, TransientError
from orchestrator.metrics import Metrics
from orchestrator.ratelimit import AdaptiveRateLimiter
from orchestrator.spans import NO_TRACER, Tracer, record_error

log = logs.get_logger("orchestrator.amplify")
#: A client-side limiter wait at least this long (seconds) is a ``rate_limited`` event of the
#: call's span; the pacing of calls a few milliseconds apart is not worth a line on a trace
#: (``orchestrator_limiter_delayed_total`` counts every wait).
VISIBLE_WAIT = 0.01


class AmplifyApi:
    def __init__(
        self,
        client: Any,
        limiter: AdaptiveRateLimiter,
        policy: RetryPolicy,
        metrics: Metrics,
        clock: Clock | None = None,
        tracer: Tracer = NO_TRACER,
    ) -> None:
        self._client = client
        self._limiter = limiter
        self._policy = policy
        self._metrics = metrics
        self._clock = clock or MonotonicClock()
        self._tracer = tracer

    @property
    def limiter(self) -> AdaptiveRateLimiter:
        return self._limiter

    async def call(
        self,
        operation: str,
        params: Mapping[str, Any],
        *,
        retry_ambiguous: bool = True,
        secrets: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """Call ``operation`` until it succeeds, fails for good, or fails ambiguously."""
        with self._tracer.api_call(operation) as span:
            try:
                return await self._call(operation, params, retry_ambiguous, secrets, span)
            except OrchestratorError as exc:  # its text is scrubbed of the request's secrets
                record_error(span, exc, str(exc))
                raise

    async def _call(
        self,
        operation: str,
        params: Mapping[str, Any],
        retry_ambiguous: bool,
        secrets: frozenset[str],
        span: Span,
    ) -> dict[str, Any]:
        for attempt in self._policy.attempts():
            try:
                return await self._attempt(operation, params, secrets, span)
            except TransientError as exc:
                if exc.ambiguous and not retry_ambiguous:
                    raise
                if attempt.last:
                    raise RetriesExhausted(
                        f"{operation} failed {attempt.number} times; last error: {exc}"
                    ) from exc
                self._metrics.api_retries.labels(operation, exc.reason).inc()
                if span.is_recording():
                    span.add_event(
                        "retry",
                        {"attempt": attempt.number, "reason": exc.reason, "delay_s": attempt.delay},
                    )
                log.debug(
                    "call_retry",
                    operation=operation,
                    reason=exc.reason,
                    attempt=attempt.number,
                    delay_s=round(attempt.delay, 3),
                    error=str(exc),
                )
                await attempt.backoff(self._clock)
        raise AssertionError("unreachable: attempts() never ends")

    async def _attempt(
        self, operation: str, params: Mapping[str, Any], secrets: frozenset[str], span: Span
    ) -> dict[str, Any]:
        # Keyed by app: tokens go to apps round-robin (orchestrator.keyed.KeyedTurns).
        ticket = await self._limiter.acquire(str(params.get("AppId", "")))
        self._metrics.limiter_wait.observe(ticket.waited)
        if ticket.waited > 0:
            self._metrics.limiter_delayed.inc()
            if ticket.waited >= VISIBLE_WAIT and span.is_recording():
                span.add_event("rate_limited", {"waited_s": round(ticket.waited, 6)})
        method = getattr(self._client, servicemodel.method_name(operation))
        started = time.perf_counter()
        try:
            response: dict[str, Any] = await method(**params)
        except Exception as exc:  # mapped right here; unknown types re-raise from map_error
            error = map_error(exc, secrets)
            self._observe(operation, error.reason, started)
            cut = isinstance(error, Throttled) and self._limiter.on_throttle(ticket)
            if cut:
                self._metrics.limiter_throttle_cuts.inc()
            if span.is_recording():
                _response_attributes(span, getattr(exc, "response", None))
                if isinstance(error, Throttled):
                    span.add_event("throttled", {"code": error.code, "limiter_cut": cut})
            raise error from exc
        self._limiter.on_success(ticket)
        self._observe(operation, "ok", started)
        if span.is_recording():
            _response_attributes(span, response)
        return response

    def _observe(self, operation: str, reason: str, started: float) -> None:
        self._metrics.api_calls.labels(operation, reason).inc()
        logs.count_call(reason)  # the request's tally for `request_finished`
        self._metrics.api_call_duration.labels(operation).observe(time.perf_counter() - started)
        self._metrics.limiter_rate.set(self._limiter.rate)

    async def list_jobs(
        self,
        app_id: str,
        environment: str,
        *,
        page_size: int = 25,
        operation: str | None = None,
        job_id: str | None = None,
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Walk ListBackendJobs pages (following NextToken as the model's paginator defines),
        filtered by ``operation`` and ``job_id`` when given."""
        config = servicemodel.paginator_config("ListBackendJobs")
        params: dict[str, Any] = {
            "AppId": app_id,
            "BackendEnvironmentName": environment,
            config["limit_key"]: page_size,
        }
        if operation:
            params["Operation"] = operation
        if job_id:
            params["JobId"] = job_id
        while True:
            page = await self.call("ListBackendJobs", params)
            yield list(page.get(config["result_key"], []))
            token = page.get(config["output_token"])
            if not token:
                return
            params[config["input_token"]] = token


def _response_attributes(span: Span, response: Mapping[str, Any] | None) -> None:
    """The AWS request id and HTTP status of the last attempt, from botocore's metadata."""
    metadata = (response or {}).get("ResponseMetadata") or {}
    if metadata.get("RequestId"):
        span.set_attribute("aws.request_id", str(metadata["RequestId"]))
    if metadata.get("HTTPStatusCode"):
        span.set_attribute("http.response.status_code", int(metadata["HTTPStatusCode"]))
