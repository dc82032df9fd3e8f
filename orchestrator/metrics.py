"""The Prometheus metrics catalogue (see docs/metrics.md), on a registry passed in.

Labels are bounded: operation (31 AmplifyBackend operations plus SQS verbs), result, outcome,
reason, status. Never a request id, job id or free text.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from orchestrator.outcome import DLQ_REASONS, FAILURE_REASONS, REJECTION_REASONS

# *_created series double the exposition for no dashboard use.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus-client

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_E2E_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.build_info = Info("orchestrator_build", "Build information.", registry=r)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.ready = Gauge(
            "orchestrator_ready",
            "1 while the consumer is receiving and SQS answers (what /readyz reports).",
            registry=r,
        )
        self.loop_lag = Histogram(
            "orchestrator_event_loop_lag_seconds",
            "How late the event loop ran a timer (sampled every 0.25 s).",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.queue_messages = Gauge(
            "orchestrator_queue_messages",
            "SQS queue depth sampled with GetQueueAttributes, by queue and state.",
            ["queue", "state"],
            registry=r,
        )
        # SQS consumer
        self.messages_received = Counter(
            "orchestrator_messages_received_total", "SQS messages received.", registry=r
        )
        self.receives = Counter(
            "orchestrator_sqs_receives_total",
            "ReceiveMessage calls by whether they returned messages.",
            ["result"],
            registry=r,
        )
        self.sqs_calls = Counter(
            "orchestrator_sqs_calls_total",
            "SQS API calls by operation and result (what the worker costs in SQS requests).",
            ["operation", "result"],
            registry=r,
        )
        self.messages_per_receive = Histogram(
            "orchestrator_sqs_messages_per_receive",
            "Messages returned by each ReceiveMessage call.",
            buckets=(0, 1, 2, 3, 5, 8, 10),
            registry=r,
        )
        self.deletes = Counter(
            "orchestrator_sqs_deletes_total", "Messages deleted from the queue.", registry=r
        )
        self.visibility_extensions = Counter(
            "orchestrator_sqs_visibility_extensions_total",
            "Visibility timeout extensions by result.",
            ["result"],
            registry=r,
        )
        self.messages_waiting = Gauge(
            "orchestrator_messages_waiting",
            "Messages received and held (read-ahead) that no request slot has started yet.",
            registry=r,
        )
        self.message_wait = Histogram(
            "orchestrator_message_wait_seconds",
            "Time a message spent on the change queue before this worker received it"
            " (SentTimestamp to receipt).",
            buckets=_E2E_BUCKETS,
            registry=r,
        )
        self.dlq_move_failures = Counter(
            "orchestrator_dlq_move_failures_total",
            "Dead-letter moves the DLQ refused; the message was kept on the change queue.",
            ["reason"],
            registry=r,
        )
        self.dlq_moves = Counter(
            "orchestrator_dlq_moves_total",
            "Messages moved to the dead-letter queue by reason.",
            ["reason"],
            registry=r,
        )
        # requests
        self.requests = Counter(
            "orchestrator_requests_total",
            "Change requests finished, by outcome and reason.",
            ["outcome", "reason"],
            registry=r,
        )
        self.deprecated_members = Counter(
            "orchestrator_deprecated_members_total",
            "Requests reported that used a member botocore's model marks deprecated, by"
            " operation and member path (the outcome event's warnings).",
            ["operation", "member"],
            registry=r,
        )
        self.sender_decisions = Counter(
            "orchestrator_sender_decisions_total",
            "Sender-policy decisions by the rule that allowed the request ('none' when denied)"
            " and decision (allowed/denied). Never a raw sender id.",
            ["rule", "decision"],
            registry=r,
        )
        self.requests_in_progress = Gauge(
            "orchestrator_requests_in_progress", "Change requests being worked on.", registry=r
        )
        self.request_duration = Histogram(
            "orchestrator_request_duration_seconds",
            "End-to-end time from receipt to outcome.",
            ["outcome"],
            buckets=_E2E_BUCKETS,
            registry=r,
        )
        # AmplifyBackend API
        self.api_calls = Counter(
            "orchestrator_api_calls_total",
            "AmplifyBackend calls by operation and result.",
            ["operation", "result"],
            registry=r,
        )
        self.api_call_duration = Histogram(
            "orchestrator_api_call_duration_seconds",
            "AmplifyBackend call latency (one attempt).",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.api_retries = Counter(
            "orchestrator_api_retries_total",
            "AmplifyBackend retries by operation and reason.",
            ["operation", "reason"],
            registry=r,
        )
        self.limiter_rate = Gauge(
            "orchestrator_rate_limiter_rate", "Current allowed call rate (calls/s).", registry=r
        )
        self.limiter_throttle_cuts = Counter(
            "orchestrator_rate_limiter_cuts_total",
            "Times the limiter cut its rate after a throttle (once per congestion episode).",
            registry=r,
        )
        self.limiter_delayed = Counter(
            "orchestrator_rate_limiter_delayed_total",
            "Calls that had to wait for a rate-limiter token (the rest went at once).",
            registry=r,
        )
        self.limiter_wait = Histogram(
            "orchestrator_rate_limiter_wait_seconds",
            "Time calls waited for a rate-limiter token.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        # jobs
        self.jobs_in_flight = Gauge(
            "orchestrator_jobs_in_flight",
            "Jobs being tracked, by operation.",
            ["operation"],
            registry=r,
        )
        self.jobs_finished = Counter(
            "orchestrator_jobs_finished_total",
            "Jobs that reached a terminal state (or timed out), by status.",
            ["operation", "status"],
            registry=r,
        )
        self.job_duration = Histogram(
            "orchestrator_job_duration_seconds",
            "Job duration from dispatch to terminal status.",
            ["operation", "status"],
            buckets=_E2E_BUCKETS,
            registry=r,
        )
        self.effect_unknown = Counter(
            "orchestrator_effect_unknown_total",
            "Mutations whose effect could not be established after a lost answer (not sent"
            " again; the request FAILED effect_unknown), by operation.",
            ["operation"],
            registry=r,
        )
        self.reconciliations = Counter(
            "orchestrator_reconciliations_total",
            "Lost or interrupted mutations looked up in ListBackendJobs, by verdict"
            " (found: adopted; absent: sent again; unknown: not sent again).",
            ["verdict"],
            registry=r,
        )
        self.ledger_conflicts = Counter(
            "orchestrator_ledger_conflicts_total",
            "Ledger writes refused because another worker wrote the request's record since it"
            " was read (a lease that expired under its holder); the request is begun again"
            " from the record as written.",
            registry=r,
        )
        self.fence_waits = Counter(
            "orchestrator_environment_fence_waits_total",
            "Mutations that first waited for an earlier step's job on the environment (a"
            " worker died or shut down while it ran).",
            registry=r,
        )
        self.tracker_sweeps = Counter(
            "orchestrator_tracker_sweeps_total", "ListBackendJobs sweeps.", registry=r
        )
        self.tracker_pages = Histogram(
            "orchestrator_tracker_sweep_pages",
            "ListBackendJobs pages read per sweep.",
            buckets=(1, 2, 3, 5, 10, 20, 50),
            registry=r,
        )
        self.tracker_sweep_duration = Histogram(
            "orchestrator_tracker_sweep_duration_seconds",
            "Time one environment sweep took (all pages).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.detection_delay = Histogram(
            "orchestrator_job_detection_delay_seconds",
            "From a job's terminal UpdateTime to the worker noticing it.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def initialise(self, operations: Iterable[str], mutations: Iterable[str]) -> None:
        """Create the series that alerts read at 0, so that a first increment is an increase
        (a counter born at 1 looks like no change to ``increase()``)."""
        for reason in FAILURE_REASONS:
            self.requests.labels("FAILED", reason)
        for reason in REJECTION_REASONS:
            self.requests.labels("REJECTED", reason)
        self.requests.labels("SUCCEEDED", "ok")
        for reason in DLQ_REASONS:
            self.dlq_moves.labels(reason)
            self.dlq_move_failures.labels(reason)
        for operation in operations:
            for result in ("ok", "throttled"):
                self.api_calls.labels(operation, result)
        for mutation in mutations:
            for status in ("COMPLETED", "FAILED", "TIMED_OUT"):
                self.jobs_finished.labels(mutation, status)
