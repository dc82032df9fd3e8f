"""Who may change what: a change request is authorised by its SQS sender.

SQS tells the worker who sent each message (the ``SenderId`` system attribute: an IAM user's
unique id ``AIDA…``, or a role's ``AROA…:<session name>``). A policy file
(``ORCHESTRATOR_SENDER_POLICY``, YAML or JSON) lists rules::

    rules:
      - name: deploy-bot                         # in metrics and logs
        senders: ["AROAEXAMPLEID:deploy-*"]      # SenderId globs
        apps: ["d1a2b3", "web-*"]                # AppId globs
        environments: ["*"]                      # BackendEnvironmentName globs
        operations: ["Create*", "Update*", "CloneBackend"]   # API names, globs

A request is allowed when **one** rule matches its sender and every one of its steps (app,
environment, operation). A destructive operation (DeleteBackend, RemoveAllBackends, …) is
allowed only by a rule that names it exactly, never by a glob, and only when
``ORCHESTRATOR_ALLOW_DESTRUCTIVE`` lists it too (the parser checks that). Globs are
:func:`fnmatch.fnmatchcase` patterns (``*``, ``?``, ``[abc]``), case-sensitive. An operation
with no environment (CreateBackend's app-wide calls) has environment "" and matches ``*``.

The file is validated when loaded; anything wrong is a :class:`ConfigurationError` (one line,
exit 2), never a silent allow-all.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import servicemodel
from orchestrator.errors import ConfigurationError
from orchestrator.messages import ChangeRequest, Step, is_destructive

_RULE_KEYS = ("name", "senders", "apps", "environments", "operations")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class Rule:
    name: str
    senders: tuple[str, ...]
    apps: tuple[str, ...]
    environments: tuple[str, ...]
    operations: tuple[str, ...]

    def matches_sender(self, sender: str) -> bool:
        return _any(sender, self.senders)

    def allows(self, step: Step) -> bool:
        if is_destructive(step.operation):
            operation_ok = step.operation in self.operations
        else:
            operation_ok = _any(step.operation, self.operations)
        return (
            operation_ok
            and _any(step.app_id, self.apps)
            and _any(step.environment, self.environments)
        )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    #: The rule that allowed the request, or None.
    rule: str | None
    #: Why not, for the log line and the rejection ('' when allowed).
    why: str = ""


@dataclass(frozen=True)
class SenderPolicy:
    rules: tuple[Rule, ...]

    def decide(self, sender: str | None, request: ChangeRequest) -> Decision:
        if not sender:
            return Decision(False, None, "the message has no SenderId")
        candidates = [rule for rule in self.rules if rule.matches_sender(sender)]
        if not candidates:
            return Decision(False, None, f"no rule names sender {sender}")
        for rule in candidates:
            if all(rule.allows(step) for step in request.steps):
                return Decision(True, rule.name)
        return Decision(False, None, _first_denied(candidates, request))


def _first_denied(rules: Sequence[Rule], request: ChangeRequest) -> str:
    names = ", ".join(rule.name for rule in rules)
    for index, step in enumerate(request.steps):
        if not any(rule.allows(step) for rule in rules):
            where = f"{step.app_id}/{step.environment}" if step.environment else step.app_id
            return f"step {index} ({step.operation} on {where}) is not allowed by rules {names}"
    return f"no single rule of {names} allows every step"


def _any(value: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def load_policy(path: str) -> SenderPolicy:
    """Read and validate a policy file; any problem is a ConfigurationError naming it."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigurationError(f"sender policy {path}: {exc.strerror or exc}") from None
    return parse_policy(_load_document(path, text), path)


def _load_document(path: str, text: str) -> Any:
    if path.endswith(".json"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"sender policy {path}: not valid JSON: {exc}") from None
    import yaml  # YAML is a superset of JSON: one parser for both

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ConfigurationError(f"sender policy {path}: not valid YAML: {detail}") from None


def parse_policy(document: Any, source: str = "policy") -> SenderPolicy:
    if not isinstance(document, Mapping) or set(document) != {"rules"}:
        raise ConfigurationError(f"sender policy {source}: expected one key, `rules`")
    raw_rules = document["rules"]
    if not isinstance(raw_rules, list) or not raw_rules:
        raise ConfigurationError(f"sender policy {source}: `rules` must be a non-empty list")
    rules = tuple(_rule(raw, index, source) for index, raw in enumerate(raw_rules))
    names = [rule.name for rule in rules]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigurationError(f"sender policy {source}: duplicate rule names {duplicates}")
    return SenderPolicy(rules)


def _rule(raw: Any, index: int, source: str) -> Rule:
    where = f"sender policy {source}: rule {index}"
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{where}: must be a mapping with keys {', '.join(_RULE_KEYS)}")
    unknown = sorted(set(raw) - set(_RULE_KEYS))
    missing = [key for key in _RULE_KEYS if key not in raw]
    if unknown or missing:
        raise ConfigurationError(f"{where}: unknown keys {unknown}, missing keys {missing}")
    name = raw["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError(f"{where}: name must be 1-64 characters of A-Za-z0-9_.-")
    lists = {key: _patterns(raw[key], f"{where} ({name}): {key}") for key in _RULE_KEYS[1:]}
    _check_operations(lists["operations"], f"{where} ({name})")
    return Rule(name, **lists)


def _patterns(value: Any, where: str) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(item, str) and item for item in value)
    ):
        raise ConfigurationError(f"{where} must be a non-empty list of non-empty strings")
    return tuple(value)


def _check_operations(patterns: Sequence[str], where: str) -> None:
    """Every pattern must match a mutation (a typo would otherwise deny silently)."""
    mutations = servicemodel.mutations()
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(operation, pattern) for operation in mutations):
            raise ConfigurationError(
                f"{where}: operation {pattern!r} matches no AmplifyBackend mutation"
                " (use API names such as CreateBackendAuth)"
            )
