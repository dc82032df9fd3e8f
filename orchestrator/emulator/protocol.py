"""rest-json as botocore's AmplifyBackend model defines it: routes, requests, responses, errors.

Nothing here names an operation. :func:`bindings` walks ``service_model().operation_names``
once and compiles, per operation, its HTTP method, its route (the model's ``requestUri``
template, which aiohttp's router matches natively: ``{appId}`` labels), and where each input
member travels (``uri`` label, ``querystring``, ``header`` or JSON body) under which wire name
(``locationName``). Requests are turned back into API-named parameters (``AppId``,
``ResourceConfig`` with nested members renamed too) ready for ``validate_params``; results are
serialised through the output shape's wire names, which is what botocore parses. Members the
shape does not know are dropped in both directions.

Signatures: no secret is shared with callers, so the SigV4 HMAC cannot be verified; what is
checked is that the caller signed, in SigV4's format: ``Authorization: AWS4-HMAC-SHA256
Credential=<key>/<yyyymmdd>/<region>/<service>/aws4_request, SignedHeaders=<a;b>,
Signature=<64 hex>`` and ``X-Amz-Date: yyyymmddThhmmssZ``. A missing Authorization gives
MissingAuthenticationTokenException, a malformed one IncompleteSignatureException (both 403).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.model import Shape

from orchestrator import servicemodel
from orchestrator.emulator.errors import (
    INCOMPLETE_SIGNATURE,
    MISSING_TOKEN,
    ApiError,
    bad_request,
)

_GREEDY_LABEL = re.compile(r"\{(\w+)\+\}")
_TEXT_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "integer": int,
    "long": int,
    "double": float,
    "float": float,
    "boolean": lambda text: text.lower() == "true",
}
_Members = dict[str, tuple[str, Shape]]
_wire_cache: dict[str, _Members] = {}
_api_cache: dict[str, _Members] = {}


@dataclass(frozen=True, slots=True)
class Binding:
    """How one operation travels over HTTP."""

    operation: str
    method: str
    path: str
    uri: tuple[tuple[str, str], ...]  # (label, API member name)
    query: tuple[tuple[str, str, Shape], ...]  # (query key, API name, shape)
    headers: tuple[tuple[str, str, Shape], ...]  # (header, API name, shape)
    body: _Members  # wire name -> (API name, shape)
    output: Shape | None


def bindings() -> list[Binding]:
    """One binding per operation of the model, in the model's order."""
    return [_bind(name) for name in servicemodel.service_model().operation_names]


def _bind(operation: str) -> Binding:
    model = servicemodel.operation_model(operation)
    uri, query, headers, body = [], [], [], {}
    shape = model.input_shape
    for name, member in (shape.members if shape is not None else {}).items():
        wire = member.serialization.get("name", name)
        location = member.serialization.get("location")
        if location == "uri":
            uri.append((wire, name))
        elif location == "querystring":
            query.append((wire, name, member))
        elif location == "header":
            headers.append((wire, name, member))
        else:
            body[wire] = (name, member)
    path = _GREEDY_LABEL.sub(r"{\1:.+}", model.http["requestUri"].split("?", 1)[0])
    return Binding(
        operation,
        model.http["method"],
        path,
        tuple(uri),
        tuple(query),
        tuple(headers),
        body,
        model.output_shape,
    )


def parse_request(
    binding: Binding,
    labels: Mapping[str, str],
    query: Mapping[str, str],
    headers: Mapping[str, str],
    raw_body: bytes,
) -> dict[str, Any]:
    """API-named parameters of one request (BadRequestException on an unreadable body)."""
    params: dict[str, Any] = {name: labels[label] for label, name in binding.uri}
    for key, name, shape in binding.query:
        if key in query:
            params[name] = _from_text(shape, query[key])
    for key, name, shape in binding.headers:
        if key in headers:
            params[name] = _from_text(shape, headers[key])
    if binding.body and raw_body.strip():
        try:
            document = json.loads(raw_body)
        except ValueError as exc:
            raise bad_request(f"request body is not valid JSON: {exc}") from None
        if not isinstance(document, dict):
            raise bad_request("request body must be a JSON object")
        for wire, value in document.items():
            member = binding.body.get(wire)
            if member is not None:
                params[member[0]] = from_wire(member[1], value)
    return params


def _from_text(shape: Shape, text: str) -> Any:
    convert = _TEXT_CONVERTERS.get(shape.type_name)
    if convert is None:
        return text
    try:
        return convert(text)
    except ValueError:
        return text  # left for the validator to report as a wrong type


def _members(shape: Shape, cache: dict[str, _Members], by_wire: bool) -> _Members:
    found = cache.get(shape.name)
    if found is None:
        found = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            found[wire if by_wire else name] = (name if by_wire else wire, member)
        cache[shape.name] = found
    return found


def from_wire(shape: Shape, value: Any) -> Any:
    """A wire value (JSON, locationName keys) as API-named Python data."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = _members(shape, _wire_cache, by_wire=True)
        return {m[0]: from_wire(m[1], v) for k, v in value.items() if (m := members.get(k))}
    if kind == "list" and isinstance(value, list):
        return [from_wire(shape.member, item) for item in value]
    if kind == "map" and isinstance(value, dict):
        return {k: from_wire(shape.value, v) for k, v in value.items()}
    return value


def to_wire(shape: Shape, value: Any) -> Any:
    """API-named Python data as wire JSON (locationName keys, unknown members dropped)."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, Mapping):
        members = _members(shape, _api_cache, by_wire=False)
        return {
            m[0]: to_wire(m[1], v)
            for k, v in value.items()
            if v is not None and (m := members.get(k))
        }
    if kind == "list" and isinstance(value, list | tuple):
        return [to_wire(shape.member, item) for item in value]
    if kind == "map" and isinstance(value, Mapping):
        return {k: to_wire(shape.value, v) for k, v in value.items()}
    return value


def response_body(binding: Binding, result: Mapping[str, Any]) -> bytes:
    document = to_wire(binding.output, result) if binding.output is not None else {}
    return json.dumps(document, separators=(",", ":")).encode()


def error_body(error: ApiError) -> bytes:
    """The JSON body of an error: the error shape's members under their wire names."""
    shape = _error_shapes().get(error.code)
    if shape is not None:
        document = to_wire(shape, error.members)
    else:
        document = {k[:1].lower() + k[1:]: v for k, v in error.members.items()}
    return json.dumps(document, separators=(",", ":")).encode()


def _error_shapes() -> dict[str, Shape]:
    if not _ERROR_SHAPES:
        for shape in servicemodel.service_model().error_shapes:
            _ERROR_SHAPES[shape.name] = shape
    return _ERROR_SHAPES


_ERROR_SHAPES: dict[str, Shape] = {}


_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 "
    r"Credential=[^/\s,]+/\d{8}/[^/\s,]+/[^/\s,]+/aws4_request,\s*"
    r"SignedHeaders=[a-z0-9\-;]+,\s*"
    r"Signature=[0-9a-f]{64}"
)
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")


def signature_error(headers: Mapping[str, str]) -> ApiError | None:
    """Why this request counts as unsigned, or None when it carries a well-formed SigV4."""
    authorization = headers.get("Authorization")
    if not authorization:
        return ApiError(MISSING_TOKEN, "Missing Authentication Token")
    if _AUTHORIZATION.fullmatch(authorization.strip()) is None:
        return ApiError(
            INCOMPLETE_SIGNATURE,
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
            "in AWS4-HMAC-SHA256 format",
        )
    amz_date = headers.get("X-Amz-Date")
    if not amz_date or _AMZ_DATE.fullmatch(amz_date) is None:
        return ApiError(INCOMPLETE_SIGNATURE, "Missing or malformed X-Amz-Date header")
    return None
