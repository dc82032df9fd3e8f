"""The reason catalogue that metrics are initialised from covers every reason the code emits."""

from __future__ import annotations

import ast
import inspect

from orchestrator import errors, messages, processor
from orchestrator.metrics import Metrics
from orchestrator.outcome import DLQ_REASONS, FAILURE_REASONS, REJECTION_REASONS


def _rejection_reasons_raised() -> set[str]:
    found = set()
    for module in (messages, processor):
        found |= _raised_in(ast.parse(inspect.getsource(module)))
    return found


def _raised_in(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "RequestRejected"
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(node.args[0].value)
    return found


def test_every_rejection_reason_is_catalogued() -> None:
    raised = _rejection_reasons_raised()
    assert len(raised) >= 8
    assert raised == set(REJECTION_REASONS)


def test_every_permanent_error_reason_is_catalogued() -> None:
    permanent = {
        cls.reason
        for cls in vars(errors).values()
        if isinstance(cls, type)
        and issubclass(cls, errors.PermanentError)
        and cls is not errors.PermanentError
    }
    assert permanent <= set(FAILURE_REASONS)
    assert set(DLQ_REASONS) == {*REJECTION_REASONS, "delivery_attempts_exhausted"}


def test_initialise_creates_every_series_alerts_read_at_zero() -> None:
    metrics = Metrics()
    metrics.initialise(["CreateBackendAuth", "GetBackend"], ["CreateBackendAuth"])
    value = metrics.registry.get_sample_value
    for reason in FAILURE_REASONS:
        assert value("orchestrator_requests_total", {"outcome": "FAILED", "reason": reason}) == 0
    for reason in REJECTION_REASONS:
        labels = {"outcome": "REJECTED", "reason": reason}
        assert value("orchestrator_requests_total", labels) == 0
        assert value("orchestrator_dlq_moves_total", {"reason": reason}) == 0
    for status in ("COMPLETED", "FAILED", "TIMED_OUT"):
        labels = {"operation": "CreateBackendAuth", "status": status}
        assert value("orchestrator_jobs_finished_total", labels) == 0
    labels = {"operation": "GetBackend", "result": "throttled"}
    assert value("orchestrator_api_calls_total", labels) == 0
