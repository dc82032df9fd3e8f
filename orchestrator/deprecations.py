"""Deprecated request members, read from botocore's AmplifyBackend model (no hand list).

The model marks a member deprecated with the ``deprecated`` trait or, as AmplifyBackend does
for ``UserPoolConfigs.ForgotPassword`` (changelog 2022-03-16), only in its documentation: it
begins "(DEPRECATED)". The replacement is not named there; it is derived from the model too: the
one sibling member that is not deprecated and whose structure has the same members
(``ForgotPassword`` and ``VerificationMessage`` both hold DeliveryMethod, EmailSettings and
SmsSettings). Only the outermost deprecated member of a path is reported (ForgotPassword, not
also its own deprecated members).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.model import Shape, StructureShape

from orchestrator import servicemodel

_MARK = "(DEPRECATED)"
_TAGS = re.compile(r"<[^>]+>")
#: Recursive shapes are cut here (AmplifyBackend's inputs are a few levels deep).
_MAX_DEPTH = 16


@dataclass(frozen=True)
class Deprecation:
    operation: str
    #: Dotted path of the member in the request's params (``[]`` for list items).
    member: str
    #: Dotted path of the member to use instead, when the model has one.
    replacement: str | None

    def message(self) -> str:
        instead = f"; use {self.replacement}" if self.replacement else ""
        return f"{self.operation}: {self.member} is deprecated{instead}"

    def public(self, step: int) -> dict[str, Any]:
        return {
            "step": step,
            "operation": self.operation,
            "member": self.member,
            "replacement": self.replacement,
            "message": self.message(),
        }


def strip_tags(documentation: str) -> str:
    """The model's documentation (HTML) as plain text."""
    return _TAGS.sub("", documentation).strip()


def is_deprecated(shape: Shape) -> bool:
    if shape.metadata.get("deprecated"):
        return True
    return strip_tags(shape.documentation or "").upper().startswith(_MARK)


def _replacement(parent: StructureShape, name: str) -> str | None:
    shape = parent.members[name]
    if not isinstance(shape, StructureShape):
        return None
    wanted = set(shape.members)
    candidates = [
        other
        for other, sibling in parent.members.items()
        if other != name
        and isinstance(sibling, StructureShape)
        and not is_deprecated(sibling)
        and set(sibling.members) == wanted
    ]
    return candidates[0] if len(candidates) == 1 else None


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _walk(shape: Shape | None, value: Any, path: str) -> Iterator[tuple[str, str | None]]:
    """(member path, replacement path) for each deprecated member present in ``value``."""
    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        for name, item in value.items():
            member = shape.members.get(name)
            if member is None:
                continue
            if is_deprecated(member):
                other = _replacement(shape, name)
                yield _join(path, name), _join(path, other) if other else None
            else:
                yield from _walk(member, item, _join(path, name))
    elif shape is not None and shape.type_name == "list" and isinstance(value, list):
        for item in value:
            yield from _walk(shape.member, item, f"{path}[]")
    elif shape is not None and shape.type_name == "map" and isinstance(value, Mapping):
        for item in value.values():
            yield from _walk(shape.value, item, f"{path}{{}}")


def find(operation: str, params: Mapping[str, Any]) -> tuple[Deprecation, ...]:
    """The deprecated members a request's params use (each path once)."""
    shape = servicemodel.operation_model(operation).input_shape
    found = dict(_walk(shape, params, ""))
    return tuple(Deprecation(operation, member, other) for member, other in found.items())


@functools.cache
def catalogue(operation: str) -> tuple[Deprecation, ...]:
    """Every deprecated member of an operation's input, outermost only."""
    return tuple(
        Deprecation(operation, member, other)
        for member, other in _all(servicemodel.operation_model(operation).input_shape, "", 0)
    )


def _all(shape: Shape | None, path: str, depth: int) -> Iterator[tuple[str, str | None]]:
    if depth > _MAX_DEPTH:
        return
    if isinstance(shape, StructureShape):
        for name, member in shape.members.items():
            if is_deprecated(member):
                other = _replacement(shape, name)
                yield _join(path, name), _join(path, other) if other else None
            else:
                yield from _all(member, _join(path, name), depth + 1)
    elif shape is not None and shape.type_name == "list":
        yield from _all(shape.member, f"{path}[]", depth + 1)
    elif shape is not None and shape.type_name == "map":
        yield from _all(shape.value, f"{path}{{}}", depth + 1)
