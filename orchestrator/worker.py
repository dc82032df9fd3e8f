"""The worker: builds the components from Settings and runs them in a fixed order.

Startup: open the SQS and AmplifyBackend clients → resolve the DLQ → open the ledger → start
the HTTP endpoints, the job tracker, the lease renewals → start consuming. Shutdown (``stop``
set, e.g. by SIGTERM): stop receiving → let requests in progress finish within the grace period
→ release the rest → flush deletes → stop the tracker, the lease renewals and the endpoints →
close the ledger and the clients (reverse order of opening) → flush the spans (tracing on: every
span ended by then is exported before ``run`` returns, within a few seconds).

Tracing (orchestrator.tracing) is passed in as a :class:`Tracing`; a worker given none is off,
unless it runs through :func:`run_until_signalled`, which reads the ``OTEL_*`` environment then.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import uuid
from dataclasses import dataclass

import anyio
from anyio.abc import TaskStatus

from orchestrator import __version__, logs, monitor, servicemodel
from orchestrator.amplify import AmplifyApi
from orchestrator.authorization import SenderPolicy, load_policy
from orchestrator.aws import open_clients
from orchestrator.backoff import RetryPolicy
from orchestrator.consumer import Consumer, ConsumerSettings
from orchestrator.dispatcher import Dispatcher, DispatchSettings
from orchestrator.errors import ConfigurationError
from orchestrator.httpserver import ObservabilityServer
from orchestrator.ledger import open_ledger, traced
from orchestrator.ledger.lease import Leases
from orchestrator.metrics import Metrics
from orchestrator.processor import Destinations, RequestProcessor
from orchestrator.ratelimit import AdaptiveRateLimiter, LimiterSettings
from orchestrator.reconcile import ReconcileSettings
from orchestrator.settings import Settings
from orchestrator.sqs import Sqs
from orchestrator.tracing import Tracing
from orchestrator.tracker import JobTracker, TrackerSettings

log = logs.get_logger("orchestrator.worker")
#: Without a RedrivePolicy, the delivery on which the worker gives a failing message up itself.
DEFAULT_MAX_RECEIVES = 10


def retry_policy(s: Settings) -> RetryPolicy:
    return RetryPolicy(s.max_attempts, s.backoff_base, s.backoff_cap)


def limiter_settings(s: Settings) -> LimiterSettings:
    return LimiterSettings(
        initial_rate=s.initial_rate, max_rate=s.max_rate, fair_keys=s.app_fairness
    )


def tracker_settings(s: Settings) -> TrackerSettings:
    return TrackerSettings(
        s.sweep_min, s.sweep_max, list_grace=s.list_grace, page_size=s.list_page_size
    )


def dispatch_settings(s: Settings) -> DispatchSettings:
    reconcile = ReconcileSettings(
        clock_skew=s.clock_skew, visibility_grace=s.list_grace, page_size=s.list_page_size
    )
    return DispatchSettings(job_timeout=s.job_timeout, reconcile=reconcile)


@dataclass(frozen=True)
class Started:
    """What a caller of ``Worker.run`` learns once the worker is consuming."""

    metrics_port: int | None
    dlq_url: str


class Worker:
    def __init__(
        self, settings: Settings, metrics: Metrics | None = None, tracing: Tracing | None = None
    ) -> None:
        self.settings = settings
        self.tracing = tracing
        self.metrics = metrics or Metrics()
        self.metrics.build_info.info({"version": __version__})
        model = servicemodel.service_model()
        jobs = [name for name in servicemodel.mutations() if servicemodel.creates_job(name)]
        self.metrics.initialise(model.operation_names, jobs)
        self.consumer: Consumer | None = None
        self.tracker: JobTracker | None = None
        self.limiter = AdaptiveRateLimiter(limiter_settings(settings))
        #: Validated before anything starts: a broken policy stops the worker at once.
        self.senders = self._sender_policy()
        #: Names this process in ledger leases.
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def readiness(self) -> tuple[bool, str]:
        consumer = self.consumer
        if consumer is None or not consumer.receiving:
            return False, "consumer not running"
        if not consumer.sqs_ok:
            return False, "SQS not reachable"
        return True, "ready"

    async def run(
        self, stop: anyio.Event, *, task_status: TaskStatus[Started] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        s = self.settings
        tracing = self.tracing or Tracing.off()
        tracer = tracing.tracer
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(tracing.flush)  # the last step of the shutdown
            sqs_c, amp_c = await stack.enter_async_context(
                open_clients(max_connections=max(16, s.concurrency * 2))
            )
            sqs = Sqs(sqs_c, self.metrics)
            redrive = await sqs.redrive_policy(s.queue_url)
            dlq_url = s.dlq_url or (redrive.dead_letter_url if redrive else None)
            if not dlq_url:
                raise ConfigurationError(
                    "no dead-letter queue: set ORCHESTRATOR_DLQ_URL or give the queue a "
                    "RedrivePolicy"
                )
            max_receives = redrive.max_receive_count if redrive else DEFAULT_MAX_RECEIVES
            if redrive is None:
                log.warning("no_redrive_policy", max_receives=max_receives)
            ledger = traced(
                await stack.enter_async_context(open_ledger(s.ledger)), tracer, s.ledger
            )
            policy = retry_policy(s)
            api = AmplifyApi(amp_c, self.limiter, policy, self.metrics, tracer=tracer)
            self.tracker = JobTracker(api, self.metrics, tracker_settings(s), tracer=tracer)
            leases = Leases(ledger, self.worker_id, s.lease_ttl)
            dispatcher = Dispatcher(
                api,
                self.tracker,
                ledger,
                leases,
                policy,
                dispatch_settings(s),
                metrics=self.metrics,
            )
            destinations = Destinations(
                s.results_queue_url,
                dlq_url,
                s.allow_destructive,
                max_receives,
                reject_deprecated=s.reject_deprecated,
                queue_url=s.queue_url,
            )
            processor = RequestProcessor(
                sqs,
                dispatcher,
                ledger,
                destinations,
                self.metrics,
                policy,
                senders=self.senders,
                tracer=tracer,
            )
            self.consumer = Consumer(
                sqs, processor.prepare, self._consumer_settings(), self.metrics
            )
            async with anyio.create_task_group() as services:
                port = await self._start_http(services)
                await services.start(self.tracker.run)
                await services.start(leases.run)
                services.start_soon(monitor.watch_loop_lag, self.metrics)
                depth_queues = {"main": s.queue_url, "dlq": dlq_url}
                services.start_soon(monitor.sample_queue_depth, sqs, self.metrics, depth_queues)
                self._log_sender_policy()
                log.info(
                    "worker_started",
                    queue_url=s.queue_url,
                    dlq_url=dlq_url,
                    metrics_port=port,
                    concurrency=s.concurrency,
                    tracing=tracing.enabled,
                )
                task_status.started(Started(port, dlq_url))
                await self.consumer.run(stop)
                services.cancel_scope.cancel()
        log.info("worker_stopped")

    def _sender_policy(self) -> SenderPolicy | None:
        path = self.settings.sender_policy
        return None if path is None else load_policy(path)

    def _log_sender_policy(self) -> None:
        if self.senders is None:
            log.warning("no_sender_policy", meaning="every sender may change every app")
        else:
            rules = [rule.name for rule in self.senders.rules]
            log.info("sender_policy_loaded", path=self.settings.sender_policy, rules=rules)

    async def _start_http(self, services: anyio.abc.TaskGroup) -> int | None:
        if self.settings.metrics_port is None:
            return None
        server = ObservabilityServer(
            self.metrics.registry,
            self.readiness,
            self.settings.metrics_host,
            self.settings.metrics_port,
        )
        port: int = await services.start(server.run)
        return port

    def _consumer_settings(self) -> ConsumerSettings:
        s = self.settings
        return ConsumerSettings(
            queue_url=s.queue_url,
            concurrency=s.concurrency,
            visibility_timeout=s.visibility_timeout,
            wait_time_seconds=s.wait_time_seconds,
            shutdown_grace=s.shutdown_grace,
            receivers=s.receivers,
            fair=s.app_fairness,
            backlog=s.fair_backlog,
        )


async def run_until_signalled(worker: Worker) -> None:
    """Run the worker; the first SIGTERM/SIGINT starts a graceful stop, a second forces it."""
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def watch_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    if stop.is_set():
                        log.warning("forced_stop", signal=signal.Signals(signum).name)
                        tg.cancel_scope.cancel()
                        return
                    log.info("stopping", signal=signal.Signals(signum).name)
                    stop.set()

        tg.start_soon(watch_signals)
        await worker.run(stop)
        tg.cancel_scope.cancel()
