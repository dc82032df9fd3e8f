"""The one error tree of the orchestrator.

    OrchestratorError
    ├── RequestRejected        the change request itself is unusable: never retried, goes to the DLQ
    ├── SlotsClosed            shutdown: a message still waiting for a run slot is released
    ├── TransientError         worth retrying (with backoff, under the rate limiter)
    │   ├── Throttled          TooManyRequestsException
    │   ├── ServerError        GatewayTimeoutException, HTTP 5xx
    │   ├── ConnectionFailure  connect/read timeouts, resets, closed connections
    │   ├── EnvironmentBusy    an earlier step's job on the environment is not known to be over
    │   ├── LeaseLost          another worker took a lease this one was late to renew
    │   ├── DeliveryFailed     an outcome event or DLQ move could not be sent: keep the message
    │   ├── LedgerUnavailable  the ledger (SQLite file, DynamoDB table) failed a read or write
    │   └── LedgerConflict     another replica changed the request's record since it was read
    └── PermanentError         ends the request FAILED
        ├── ApiRejected        BadRequestException, NotFoundException, any other 4xx
        ├── RetriesExhausted   a transient error outlived the retry budget
        ├── EffectUnknown      a mutation's answer was lost and whether it took effect cannot
        │                      be established: it is not sent again (at most once)
        ├── JobFailed          a job ended FAILED
        └── JobTimedOut        a job did not reach a terminal status in time

Outside the tree, ``ConfigurationError`` (a ``SystemExit``) stops a worker that cannot start as
configured (no DLQ, no ledger table) with its message instead of a traceback.

Dependency errors are mapped to this tree at their boundary, with ``raise ... from exc``:
AmplifyBackend's in :mod:`orchestrator.aws` (used by :mod:`orchestrator.amplify`), SQS's in
:mod:`orchestrator.sqs`, the ledger's (``sqlite3.Error``, DynamoDB's ``ClientError``) in
:mod:`orchestrator.ledger`; callers never catch a raw botocore or sqlite3 exception.
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base of every error the orchestrator raises on purpose."""

    #: A short, stable, low-cardinality label (used for metrics and outcome reasons).
    reason = "error"


class RequestRejected(OrchestratorError):
    """A change request that can never succeed as written (bad JSON, unknown operation...)."""

    def __init__(self, reason: str, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.request_id = request_id


class TransientError(OrchestratorError):
    reason = "transient"

    def __init__(self, message: str, *, code: str = "", ambiguous: bool = False) -> None:
        super().__init__(message)
        self.code = code
        #: The call may have taken effect before it failed (a 5xx or a lost connection).
        self.ambiguous = ambiguous


class Throttled(TransientError):
    reason = "throttled"


class ServerError(TransientError):
    reason = "server_error"


class ConnectionFailure(TransientError):
    reason = "connection_error"


class EnvironmentBusy(TransientError):
    reason = "environment_busy"


class LeaseLost(TransientError):
    reason = "lease_lost"


class DeliveryFailed(TransientError):
    reason = "delivery_failed"


class LedgerUnavailable(TransientError):
    reason = "ledger_unavailable"


class LedgerConflict(TransientError):
    """Another replica changed the request's record since this process read it."""

    reason = "ledger_conflict"


class SlotsClosed(OrchestratorError):
    """The run slots are closed (shutdown): a request still waiting for one will not start."""

    reason = "shutting_down"


class PermanentError(OrchestratorError):
    reason = "permanent"


class ApiRejected(PermanentError):
    reason = "client_error"

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class RetriesExhausted(PermanentError):
    reason = "retries_exhausted"


class EffectUnknown(PermanentError):
    reason = "effect_unknown"

    def __init__(self, message: str, candidates: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        #: Job ids that may be the one the call made (none when nothing could be listed).
        self.candidates = candidates


class JobFailed(PermanentError):
    reason = "job_failed"


class JobTimedOut(PermanentError):
    reason = "job_timeout"


class ConfigurationError(SystemExit):
    """The worker cannot start as configured; the message says what to set."""
