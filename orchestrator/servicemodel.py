"""AmplifyBackend as botocore describes it: the one source of operations, shapes and traits.

Everything the worker and the emulator know about the API comes from botocore's bundled
service model: operation names (API and boto3 spellings), which operations mutate and which
return a job, parameter validation, the ``sensitive`` trait used for redaction, the
ListBackendJobs paginator and the modelled error codes. Nothing here is a hand-written schema.

The model marks no operation read-only, so mutations are classified by the AWS naming
convention the model's operation names follow: ``Get*`` and ``List*`` read; the job-control
operations (those whose *input* carries a ``JobId``: GetBackendJob, UpdateBackendJob,
ListBackendJobs) manage jobs rather than backends; everything else mutates.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import botocore.session
from botocore import xform_name
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator

SERVICE_NAME = "amplifybackend"
REDACTED = "***"
TERMINAL_JOB_STATUSES = frozenset({"COMPLETED", "FAILED"})
_READ_PREFIXES = ("Get", "List")


@functools.cache
def service_model() -> ServiceModel:
    """Botocore's AmplifyBackend model (loaded once per process)."""
    return botocore.session.get_session().get_service_model(SERVICE_NAME)


@functools.cache
def _names_by_spelling() -> dict[str, str]:
    names: dict[str, str] = {}
    for name in service_model().operation_names:
        names[name] = name
        names[xform_name(name)] = name
    return names


def resolve_operation(name: str) -> str | None:
    """The API operation name for an API or boto3 spelling, or None if the model has none."""
    return _names_by_spelling().get(name)


def operation_model(name: str) -> OperationModel:
    return service_model().operation_model(name)


def method_name(operation: str) -> str:
    """The boto3/aiobotocore client method for an API operation name."""
    return str(xform_name(operation))


def _input_members(operation: str) -> Mapping[str, Shape]:
    shape = operation_model(operation).input_shape
    return shape.members if shape is not None else {}


def _output_members(operation: str) -> Mapping[str, Shape]:
    shape = operation_model(operation).output_shape
    return shape.members if shape is not None else {}


@functools.cache
def is_mutation(operation: str) -> bool:
    """True for operations that change a backend (see the module docstring for the rule)."""
    if operation.startswith(_READ_PREFIXES):
        return False
    return "JobId" not in _input_members(operation)


@functools.cache
def creates_job(operation: str) -> bool:
    """True for mutations whose response carries a JobId to track."""
    return is_mutation(operation) and "JobId" in _output_members(operation)


@functools.cache
def mutations() -> tuple[str, ...]:
    return tuple(op for op in service_model().operation_names if is_mutation(op))


def validate_params(operation: str, params: Mapping[str, Any]) -> list[str]:
    """Botocore's own parameter validation; returns one line per problem (empty when valid)."""
    shape = operation_model(operation).input_shape
    report = ParamValidator().validate(dict(params), shape)
    if not report.has_errors():
        return []
    lines = report.generate_report().splitlines()
    return [line.strip() for line in lines[1:] if line.strip()] or [report.generate_report()]


def spelling_hints(operation: str, params: Mapping[str, Any]) -> list[str]:
    """Hints ("did you mean ...?") for members spelled in another case (the REST reference's
    camelCase ``resourceConfig`` for boto3's ``ResourceConfig``), at any depth."""
    return list(_hints(operation_model(operation).input_shape, params, ""))


def _hints(shape: Shape | None, value: Any, path: str) -> Iterator[str]:
    if shape is None:
        return
    if shape.type_name == "structure" and isinstance(value, Mapping):
        by_folded = {name.casefold(): name for name in shape.members}
        for key, item in value.items():
            member = shape.members.get(key)
            if member is not None:
                yield from _hints(member, item, f"{path}{key}.")
            elif str(key).casefold() in by_folded:
                yield f"{path}{key}: did you mean {by_folded[str(key).casefold()]}?"
    elif shape.type_name == "list" and isinstance(value, list):
        for item in value:
            yield from _hints(shape.member, item, path)
    elif shape.type_name == "map" and isinstance(value, Mapping):
        for item in value.values():
            yield from _hints(shape.value, item, path)


def error_status(code: str) -> int:
    """The HTTP status the model gives an error code (500 for undeclared codes)."""
    for shape in service_model().error_shapes:
        if shape.name == code:
            return int(shape.metadata.get("error", {}).get("httpStatusCode", 500))
    return 500


def _is_sensitive(shape: Shape) -> bool:
    return bool(shape.metadata.get("sensitive"))


def redact_value(shape: Shape | None, value: Any) -> Any:
    """A copy of ``value`` with every member whose shape is ``sensitive`` replaced by ``***``."""
    if shape is None:
        return value
    if _is_sensitive(shape):
        return REDACTED
    if shape.type_name == "structure" and isinstance(value, Mapping):
        members = shape.members
        return {k: redact_value(members.get(k), v) for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [redact_value(shape.member, v) for v in value]
    if shape.type_name == "map" and isinstance(value, Mapping):
        return {k: redact_value(shape.value, v) for k, v in value.items()}
    return value


def redact_params(operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Request parameters safe to log: sensitive shapes replaced by ``***``."""
    redacted = redact_value(operation_model(operation).input_shape, params)
    return dict(redacted) if isinstance(redacted, Mapping) else {}


def _sensitive_strings(shape: Shape | None, value: Any, inside: bool) -> Iterator[str]:
    if inside or (shape is not None and _is_sensitive(shape)):
        # Under a sensitive shape every scalar is secret, whatever its type: a value of the
        # wrong type is quoted back by botocore's validator and must be masked there too.
        yield from _leaves(value)
    elif shape is None:
        return
    elif shape.type_name == "structure" and isinstance(value, Mapping):
        for key, member in value.items():
            yield from _sensitive_strings(shape.members.get(key), member, False)
    elif shape.type_name == "list" and isinstance(value, list):
        for item in value:
            yield from _sensitive_strings(shape.member, item, False)
    elif shape.type_name == "map" and isinstance(value, Mapping):
        for item in value.values():
            yield from _sensitive_strings(shape.value, item, False)


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):  # keys are member names, not secrets
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool) and str(value):
        yield str(value)


def sensitive_strings(operation: str, params: Mapping[str, Any]) -> frozenset[str]:
    """Every string value that sits in (or under) a sensitive shape of this request."""
    shape = operation_model(operation).input_shape
    return frozenset(_sensitive_strings(shape, params, False))


def scrub(text: str, secrets: frozenset[str]) -> str:
    """Free text (an error message, a reason) with any known secret value masked."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


@functools.cache
def paginator_config(operation: str) -> dict[str, str]:
    """The model's paginator definition (input_token, output_token, limit_key, result_key)."""
    loader = botocore.session.get_session().get_component("data_loader")
    model = loader.load_service_model(SERVICE_NAME, "paginators-1")
    config = model["pagination"][operation]
    return {
        key: str(config[key]) for key in ("input_token", "output_token", "limit_key", "result_key")
    }
