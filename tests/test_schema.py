"""schema/: generated from botocore's model, checked in, and in agreement with the parser."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from jsonschema import Draft202012Validator

from orchestrator import __version__, messages, requestschema, schema, servicemodel
from tests.strategies import model_bodies

SCHEMA_DIR = Path(__file__).parents[1] / "schema"
EXAMPLES = int(os.environ.get("ORCHESTRATOR_FUZZ_EXAMPLES", "300"))
DESTRUCTIVE = frozenset(op for op in servicemodel.mutations() if messages.is_destructive(op))
STRICT = Draft202012Validator(requestschema.change_request_schema())
LENIENT = Draft202012Validator(
    requestschema.as_the_worker_checks(requestschema.change_request_schema())
)


def test_checked_in_files_are_what_the_installed_botocore_generates() -> None:
    expected = schema.documents(__version__)
    found = {path.name: path.read_text() for path in SCHEMA_DIR.iterdir()}
    assert found.keys() == expected.keys()
    for name, text in expected.items():
        assert found[name] == text, f"schema/{name} is stale: run `orchestrator schema`"


def test_the_schemas_are_valid_json_schema_2020_12() -> None:
    for name in ("change-request.schema.json", "outcome-event.schema.json"):
        Draft202012Validator.check_schema(json.loads((SCHEMA_DIR / name).read_text()))


def test_the_asyncapi_document_references_what_exists() -> None:
    document = json.loads((SCHEMA_DIR / "asyncapi.json").read_text())
    assert document["asyncapi"].startswith("3.")
    for operation in document["operations"].values():
        channel = operation["channel"]["$ref"].removeprefix("#/channels/")
        assert channel in document["channels"]
    for message in document["components"]["messages"].values():
        target = message["payload"].get("schema", {}).get("$ref")
        assert target is None or (SCHEMA_DIR / target).exists(), target
    headers = document["components"]["messages"]["DeadLetter"]["headers"]["properties"]
    assert set(headers) == {"reason", "error", "request_id", "source_message_id"}


def test_sensitive_and_deprecated_members_are_marked() -> None:
    definitions = requestschema.change_request_schema()["$defs"]
    providers = definitions["SocialProviderSettings"]["properties"]
    assert providers["Google"]["writeOnly"] is True  # the model marks the whole structure
    pool = definitions["CreateBackendAuthUserPoolConfig"]["properties"]
    assert pool["ForgotPassword"]["deprecated"] is True
    assert "deprecated" not in pool["VerificationMessage"]


def _accepted(body: str) -> bool:
    try:
        messages.parse_change_request(body, allow_destructive=DESTRUCTIVE)
    except Exception:
        return False
    return True


def _has_integral_float(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    children = (
        value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    )
    return any(_has_integral_float(child) for child in children)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model_bodies())
def test_schema_and_parser_agree_on_generated_bodies(body: str) -> None:
    """Bodies from the model, valid and mutated: valid under the strict schema ⇒ accepted by
    the parser; valid under the schema minus STRICTER_THAN_THE_WORKER ⇔ accepted. Documented
    exceptions, assumed away: JSON Schema calls 1.0 an integer (botocore does not), and
    Python's `$` in the request_id pattern also matches before a final newline."""
    document = json.loads(body)
    assume(not _has_integral_float(document))
    assume(not str(document.get("request_id", "")).endswith("\n"))
    accepted = _accepted(body)
    assert LENIENT.is_valid(document) == accepted, [
        e.message for e in LENIENT.iter_errors(document)
    ]
    if STRICT.is_valid(document):
        assert accepted
