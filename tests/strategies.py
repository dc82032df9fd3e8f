"""Hypothesis strategies for change-request bodies: well-formed, subtly wrong, and hostile.

Parameters are generated from botocore's AmplifyBackend input shapes (so many bodies get deep
into botocore's validator), then sometimes corrupted: a member of the wrong type, a missing
required member, an unknown member, an enum value that does not exist.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from orchestrator import servicemodel

MUTATIONS = sorted(servicemodel.mutations())
MAX_SQS_BODY = 256 * 1024

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=30,
)


def value_for(shape: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """A value botocore's validator accepts for ``shape`` (structures may omit optionals)."""
    kind = shape.type_name
    if kind == "structure":
        if depth > 6:
            return st.just({})
        members = shape.members
        required = set(shape.required_members)
        return st.fixed_dictionaries(
            {name: value_for(members[name], depth + 1) for name in required},
            optional={
                name: value_for(member, depth + 1)
                for name, member in members.items()
                if name not in required
            },
        )
    if kind == "list":
        return st.lists(value_for(shape.member, depth + 1), max_size=3)
    if kind == "map":
        return st.dictionaries(st.text(max_size=10), value_for(shape.value, depth + 1), max_size=3)
    if kind == "string":
        enum = shape.enum
        return st.sampled_from(enum) if enum else st.text(min_size=1, max_size=40)
    if kind == "boolean":
        return st.booleans()
    if kind in {"integer", "long"}:
        return st.integers(min_value=-(2**31), max_value=2**31 - 1)
    if kind in {"double", "float"}:
        return st.floats(allow_nan=False, allow_infinity=False)
    return json_values


def _corrupt(params: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    choice = data.draw(st.sampled_from(["none", "drop", "retype", "unknown", "enum"]))
    if choice == "none" or not params:
        return params
    key = data.draw(st.sampled_from(sorted(params)))
    corrupted = dict(params)
    if choice == "drop":
        del corrupted[key]
    elif choice == "retype":
        corrupted[key] = data.draw(json_values)
    elif choice == "unknown":
        corrupted[data.draw(st.text(min_size=1, max_size=20))] = data.draw(json_values)
    else:
        corrupted[key] = "NOT_A_REAL_ENUM_VALUE"
    return corrupted


@st.composite
def model_steps(draw: st.DrawFn) -> dict[str, Any]:
    """One step of a real mutating operation with model-shaped, maybe corrupted, params."""
    operation = draw(st.sampled_from(MUTATIONS))
    shape = servicemodel.service_model().operation_model(operation).input_shape
    params = draw(value_for(shape))
    params = _corrupt(params, draw(st.data()))
    spelling = draw(st.sampled_from(["api", "boto3"]))
    name = servicemodel.method_name(operation) if spelling == "boto3" else operation
    return {"operation": name, "params": params}


@st.composite
def model_bodies(draw: st.DrawFn) -> str:
    steps = draw(st.lists(model_steps(), min_size=1, max_size=3))
    request_id = draw(st.from_regex(r"[A-Za-z0-9._:-]{1,40}", fullmatch=True) | st.text())
    document: dict[str, Any] = {"request_id": request_id}
    if len(steps) == 1 and draw(st.booleans()):
        document.update(steps[0])
    else:
        document["steps"] = steps
    return json.dumps(document)


random_documents = st.fixed_dictionaries(
    {},
    optional={
        "request_id": st.text(max_size=130) | json_values,
        "operation": st.sampled_from(servicemodel.service_model().operation_names)
        | st.text(max_size=30)
        | json_values,
        "params": json_values,
        "steps": st.lists(st.fixed_dictionaries({"operation": st.text(), "params": json_values})),
        "reply_to": json_values,
        "unexpected": json_values,
    },
).map(json.dumps)

deep_nesting = st.integers(min_value=20, max_value=20_000).map(
    lambda depth: (
        json.dumps({"request_id": f"deep-{depth}", "operation": "CreateBackend"})[:-1]
        + ', "params": '
        + "[" * depth
        + "]" * depth
        + "}"
    )
)

huge_bodies = st.integers(min_value=1, max_value=MAX_SQS_BODY - 100).map(
    lambda size: json.dumps(
        {"request_id": f"huge-{size}", "operation": "CreateBackend", "params": {"x": "y" * size}}
    )
)

#: Everything a producer could put on the queue, hostile included.
any_body: st.SearchStrategy[str | bytes] = (
    model_bodies()
    | random_documents
    | deep_nesting
    | huge_bodies
    | st.text(max_size=300)
    | st.binary(max_size=300)
)


def sqs_safe(body: str | bytes) -> str | None:
    """The body as SQS can carry it (valid Unicode, allowed XML characters, ≤ 256 KiB)."""
    if isinstance(body, bytes):
        try:
            body = body.decode()
        except UnicodeDecodeError:
            return None
    allowed = all(
        c in "\t\n\r" or "\x20" <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd" or c >= "\U00010000"
        for c in body
    )
    if not body or not allowed or len(body.encode()) > MAX_SQS_BODY:
        return None
    return body
