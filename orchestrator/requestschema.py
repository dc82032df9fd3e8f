"""The change request's JSON Schema (2020-12), generated from botocore's AmplifyBackend model.

Per operation, ``params`` follow the operation's input shape: members, required members,
types, enums, ``min``/``max`` bounds, ``deprecated: true`` (see :mod:`deprecations`) and
``writeOnly: true`` for members the model marks ``sensitive`` (never echoed back).

The schema is **stricter** than the worker's parser in a few documented ways (listed in
:data:`STRICTER_THAN_THE_WORKER`): botocore's validator leaves enum values, maximum bounds and
patterns to the service, which then answers BadRequestException (the request ends FAILED
``client_error`` instead of REJECTED). It cannot express the body limits (bytes, nesting),
which it states in its description.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.model import Shape

from orchestrator import deprecations, messages, servicemodel

DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE_URI = "https://orchestrator.example.com/schema"
#: Where the schema is stricter than the worker's parser (botocore's validator), which leaves
#: these to the service: enum values, maximum bounds, and booleans in numeric members (botocore
#: takes True for 1). :func:`as_the_worker_checks` removes exactly these.
STRICTER_THAN_THE_WORKER = ("enum", "maxLength", "maxItems", "maximum", "boolean as a number")
_NUMERIC = ("integer", "number")
_REQUEST_ID_PATTERN = "^[A-Za-z0-9._:-]{1,128}$"
_QUEUE_URL_PATTERN = "^https?://"
_SCALARS = {
    "string": "string",
    "boolean": "boolean",
    "integer": "integer",
    "long": "integer",
    "double": "number",
    "float": "number",
}


def _bounds(shape: Shape, kind: str) -> dict[str, Any]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    names = {
        "string": ("minLength", "maxLength"),
        "list": ("minItems", "maxItems"),
        "integer": ("minimum", "maximum"),
        "number": ("minimum", "maximum"),
    }.get(kind)
    if names is None:
        return {}
    bounds = {names[0]: low} if low is not None else {}
    return {**bounds, **({names[1]: high} if high is not None else {})}


def _shape_schema(shape: Shape, defs: dict[str, Any]) -> dict[str, Any]:
    """A reference to ``shape``'s definition (structures) or its inline schema."""
    if shape.type_name == "structure":
        if shape.name not in defs:
            defs[shape.name] = {}  # placeholder: recursive shapes refer to it
            defs[shape.name] = _structure(shape, defs)
        return {"$ref": f"#/$defs/{shape.name}"}
    if shape.type_name == "list":
        schema = {"type": "array", "items": _member(shape.member, defs)}
        return {**schema, **_bounds(shape, "list")}
    if shape.type_name == "map":
        return {"type": "object", "additionalProperties": _member(shape.value, defs)}
    if shape.type_name == "timestamp":
        return {"type": ["string", "number"], "description": "ISO 8601 or epoch seconds"}
    kind = _SCALARS.get(shape.type_name, "string")
    schema = {"type": kind, **_bounds(shape, kind)}
    enum = getattr(shape, "enum", None)  # StringShape only
    if enum:
        schema["enum"] = list(enum)
    return schema


def _member(shape: Shape, defs: dict[str, Any]) -> dict[str, Any]:
    schema = _shape_schema(shape, defs)
    extra: dict[str, Any] = {}
    if shape.metadata.get("sensitive"):
        extra["writeOnly"] = True
    if deprecations.is_deprecated(shape):
        extra["deprecated"] = True
    if not extra:
        return schema
    return {"allOf": [schema], **extra} if "$ref" in schema else {**schema, **extra}


def _structure(shape: Shape, defs: dict[str, Any]) -> dict[str, Any]:
    members = shape.members
    properties = {}
    for name, member in members.items():
        described = _member(member, defs)
        doc = _plain(member.documentation)
        properties[name] = {**described, "description": doc} if doc else described
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    required = list(shape.required_members)
    return {**schema, "required": required} if required else schema


def _plain(documentation: str | None) -> str:
    text = deprecations.strip_tags(documentation or "")
    return " ".join(text.split())


def _operation_branches(defs: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for operation in servicemodel.mutations():
        shape = servicemodel.operation_model(operation).input_shape
        params = _shape_schema(shape, defs) if shape is not None else {"type": "object"}
        spellings = [operation, servicemodel.method_name(operation)]
        branch = {
            "properties": {"operation": {"enum": spellings}, "params": params},
            "required": ["operation", "params"],
        }
        if messages.is_destructive(operation):
            branch["description"] = (
                f"{operation} is destructive: rejected unless ORCHESTRATOR_ALLOW_DESTRUCTIVE "
                "names it"
            )
        yield operation, branch


def change_request_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    branches = dict(_operation_branches(defs))
    defs["Step"] = {
        "type": "object",
        "properties": {"operation": {"type": "string"}, "params": {"type": "object"}},
        "required": ["operation", "params"],
        "additionalProperties": False,
        "oneOf": [{"$ref": f"#/$defs/step.{name}"} for name in branches],
    }
    for name, branch in branches.items():
        defs[f"step.{name}"] = branch
    return {
        "$schema": DIALECT,
        "$id": f"{BASE_URI}/change-request.schema.json",
        "title": "Change request",
        "description": (
            "One SQS message body for the orchestrator's change queue: one step (operation +"
            " params) or several run in order (steps). Params are the boto3 (PascalCase)"
            f" request parameters. Limits the schema cannot state: {messages.MAX_BODY_BYTES}"
            f" bytes, {messages.MAX_DEPTH} levels of nesting."
        ),
        "type": "object",
        "properties": {
            "request_id": {"type": "string", "pattern": _REQUEST_ID_PATTERN},
            "reply_to": {"type": "string", "pattern": _QUEUE_URL_PATTERN},
            "operation": {"type": "string"},
            "params": {"type": "object"},
            "steps": {
                "type": "array",
                "items": {"$ref": "#/$defs/Step"},
                "minItems": 1,
                "maxItems": messages.MAX_STEPS,
            },
        },
        "required": ["request_id"],
        "additionalProperties": False,
        "oneOf": [
            {
                "required": ["steps"],
                "not": {"anyOf": [{"required": ["operation"]}, {"required": ["params"]}]},
            },
            {"$ref": "#/$defs/SingleStep"},
        ],
        "$defs": {
            "SingleStep": {
                "required": ["operation", "params"],
                "not": {"required": ["steps"]},
                "oneOf": [{"$ref": f"#/$defs/step.{name}"} for name in branches],
            },
            **defs,
        },
    }


def as_the_worker_checks(request_schema: dict[str, Any]) -> dict[str, Any]:
    """The change-request schema without :data:`STRICTER_THAN_THE_WORKER`: what the worker's
    parser itself enforces on params (the agreement property test checks this)."""
    lenient: dict[str, Any] = json.loads(json.dumps(request_schema))
    for name, definition in lenient["$defs"].items():
        if name not in ("Step", "SingleStep") and not name.startswith("step."):
            _relax(definition)
    for name, definition in lenient["$defs"].items():
        if name.startswith("step."):
            _relax(definition["properties"]["params"])
    return lenient


def _relax(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _relax(item)
    if not isinstance(node, dict):
        return
    for keyword in ("enum", "maxLength", "maxItems", "maximum"):
        node.pop(keyword, None)
    if node.get("type") in _NUMERIC:
        node["type"] = [node["type"], "boolean"]
    for key, value in node.items():
        if key != "required":
            _relax(value)
