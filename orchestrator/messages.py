"""The change-request contract: parsing and validating an SQS message body.

A body is a JSON object::

    {"request_id": "deploy-42",                      # 1-128 of A-Za-z0-9._:-
     "operation": "CreateBackendAuth",               # or "create_backend_auth"
     "params": {...boto3 request parameters...},
     "reply_to": "https://sqs.../results"}           # optional

or, for several steps run in order, ``"steps": [{"operation": ..., "params": ...}, ...]`` in
place of ``operation``/``params``. Only mutating operations are accepted; parameters are checked
by botocore's own validator against the AmplifyBackend model. Anything wrong raises
:class:`~orchestrator.errors.RequestRejected` with a stable ``reason`` and a readable message
(with secrets masked), never a raw exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator import deprecations, servicemodel
from orchestrator.deprecations import Deprecation
from orchestrator.errors import RequestRejected

#: One Amplify backend environment: (AppId, BackendEnvironmentName). What the dispatcher
#: serialises mutations on and the tracker follows jobs by.
EnvKey = tuple[str, str]

REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
MAX_BODY_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_STEPS = 20
_TOP_LEVEL = frozenset({"request_id", "operation", "params", "steps", "reply_to"})
_STEP_KEYS = frozenset({"operation", "params"})
_QUEUE_URL_SCHEMES = ("https://", "http://")
_DESTRUCTIVE_PREFIXES = ("Delete", "Remove")


def is_destructive(operation: str) -> bool:
    """Operations that delete backends or their resources (need an explicit allow-list)."""
    return operation.startswith(_DESTRUCTIVE_PREFIXES) and "Backend" in operation


@dataclass(frozen=True)
class Step:
    operation: str
    params: Mapping[str, Any]
    #: Deprecated members these params use (botocore's model; see :mod:`deprecations`).
    deprecations: tuple[Deprecation, ...] = ()

    @property
    def app_id(self) -> str:
        return str(self.params.get("AppId", ""))

    @property
    def environment(self) -> str:
        """The backend environment this step acts on ('' for app-wide operations)."""
        return str(self.params.get("BackendEnvironmentName", ""))

    @property
    def env_key(self) -> EnvKey:
        return (self.app_id, self.environment)


@dataclass(frozen=True)
class ChangeRequest:
    request_id: str
    steps: tuple[Step, ...]
    reply_to: str | None = None
    secrets: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @property
    def app_id(self) -> str:
        """The app the request acts on (its first step's): its key for per-app fairness."""
        return self.steps[0].app_id

    def scrub(self, text: str) -> str:
        return servicemodel.scrub(text, self.secrets)

    def warnings(self) -> list[dict[str, Any]]:
        """The outcome event's ``warnings``: each deprecated member used, by step."""
        return [
            deprecation.public(index)
            for index, step in enumerate(self.steps)
            for deprecation in step.deprecations
        ]


def parse_change_request(
    body: str | bytes,
    *,
    allow_destructive: frozenset[str] = frozenset(),
    reject_deprecated: bool = False,
) -> ChangeRequest:
    """Parse and validate one message body, or raise RequestRejected. A deprecated member is
    accepted with a warning, or rejected (``deprecated_member``) with ``reject_deprecated``."""
    document = _load_json(body)
    request_id = _request_id(document)
    try:
        steps = tuple(_parse_step(raw, allow_destructive) for raw in _raw_steps(document))
        if reject_deprecated:
            _refuse_deprecated(steps)
    except RequestRejected as exc:
        exc.request_id = request_id
        raise
    secrets = frozenset().union(
        *(servicemodel.sensitive_strings(s.operation, s.params) for s in steps)
    )
    return ChangeRequest(request_id, steps, _reply_to(document, request_id), secrets)


def _best_effort_document(body: str | bytes) -> dict[str, Any] | None:
    """A body that failed to parse, as a JSON object, when it still reads as one safely."""
    try:
        document = json.loads(body) if len(body) <= MAX_BODY_BYTES else None
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def best_effort_request_id(body: str | bytes) -> str | None:
    """The request_id of a body that failed to parse, when one can still be read safely."""
    candidate = (_best_effort_document(body) or {}).get("request_id")
    if isinstance(candidate, str) and REQUEST_ID_RE.fullmatch(candidate):
        return candidate
    return None


def best_effort_reply_to(body: str | bytes) -> str | None:
    """The reply_to of a body that failed to parse, when it reads as a queue URL: a rejected
    request's producer gets its outcome where it asked for it."""
    value = (_best_effort_document(body) or {}).get("reply_to")
    if isinstance(value, str) and value.startswith(_QUEUE_URL_SCHEMES):
        return value
    return None


def _load_json(body: str | bytes) -> dict[str, Any]:
    size = len(body.encode() if isinstance(body, str) else body)
    if size > MAX_BODY_BYTES:
        raise RequestRejected("too_large", f"body is {size} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise RequestRejected("invalid_json", f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RequestRejected("invalid_request", "body must be a JSON object")
    if _depth(document) > MAX_DEPTH:
        raise RequestRejected("invalid_request", f"body nests deeper than {MAX_DEPTH} levels")
    return document


def _depth(value: Any) -> int:
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _request_id(document: Mapping[str, Any]) -> str:
    value = document.get("request_id")
    if not isinstance(value, str) or not REQUEST_ID_RE.fullmatch(value):
        raise RequestRejected(
            "invalid_request_id", "request_id is required: 1-128 characters of A-Za-z0-9._:-"
        )
    return value


def _raw_steps(document: Mapping[str, Any]) -> list[Any]:
    unknown = sorted(set(document) - _TOP_LEVEL)
    if unknown:
        raise RequestRejected("invalid_request", f"unknown fields: {', '.join(unknown)}")
    has_single = "operation" in document or "params" in document
    if has_single == ("steps" in document):
        raise RequestRejected(
            "invalid_request", "give either operation + params, or steps (not both)"
        )
    if has_single:
        return [{"operation": document.get("operation"), "params": document.get("params")}]
    steps = document["steps"]
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise RequestRejected("invalid_request", f"steps must be a list of 1-{MAX_STEPS} steps")
    return steps


def _parse_step(raw: Any, allow_destructive: frozenset[str]) -> Step:
    if not isinstance(raw, dict) or set(raw) - _STEP_KEYS:
        raise RequestRejected("invalid_request", "a step is an object with operation and params")
    operation = _operation(raw.get("operation"), allow_destructive)
    params = raw.get("params")
    if not isinstance(params, dict):
        raise RequestRejected("invalid_params", f"{operation}: params must be a JSON object")
    problems = servicemodel.validate_params(operation, params)
    if problems:
        secrets = servicemodel.sensitive_strings(operation, params)
        hints = servicemodel.spelling_hints(operation, params)
        detail = servicemodel.scrub("; ".join(hints + problems), secrets)
        raise RequestRejected("invalid_params", f"{operation}: {detail}")
    return Step(operation, params, deprecations.find(operation, params))


def _refuse_deprecated(steps: tuple[Step, ...]) -> None:
    used = [deprecation.message() for step in steps for deprecation in step.deprecations]
    if used:
        raise RequestRejected("deprecated_member", "; ".join(used))


def _operation(name: Any, allow_destructive: frozenset[str]) -> str:
    if not isinstance(name, str):
        raise RequestRejected("unknown_operation", "operation must be a string")
    operation = servicemodel.resolve_operation(name)
    if operation is None:
        shown = name[:64]
        raise RequestRejected("unknown_operation", f"unknown AmplifyBackend operation {shown!r}")
    if not servicemodel.is_mutation(operation):
        raise RequestRejected(
            "not_a_mutation", f"{operation} does not change a backend; only mutations are accepted"
        )
    if is_destructive(operation) and operation not in allow_destructive:
        raise RequestRejected(
            "destructive_not_allowed",
            f"{operation} is destructive; list it in ORCHESTRATOR_ALLOW_DESTRUCTIVE "
            "(--allow-destructive) to enable it",
        )
    return operation


def _reply_to(document: Mapping[str, Any], request_id: str) -> str | None:
    value = document.get("reply_to")
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(_QUEUE_URL_SCHEMES):
        raise RequestRejected(
            "invalid_request", "reply_to must be an SQS queue URL", request_id=request_id
        )
    return value
