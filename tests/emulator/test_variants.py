"""Behaviours AWS leaves undocumented, each playable: list orders, timestamp formats, knobs.

A worker must not depend on how this emulator happens to behave where AWS documents nothing;
these tests prove each variant through a real client, so callers can parametrise over them.
"""

from __future__ import annotations

import argparse
import base64
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from orchestrator.emulator import EmulatorConfig, EmulatorHandle, EmulatorThread
from orchestrator.emulator.cli import add_arguments, config_from_args, run
from tests.emulator.support import auth_params, get_job, stamp, terminal, wait_until
from tests.emulator.world import APP, ENV, params_for

WHERE = {"AppId": APP, "BackendEnvironmentName": ENV}
ORDERS = ("newest", "oldest", "unordered")


def create(client: Any, name: str) -> str:
    return str(client.create_backend_auth(**auth_params(name))["JobId"])


def walk_pages(
    client: Any, limit: int, between: Callable[[], None] | None = None, **filters: Any
) -> list[list[str]]:
    """Every page's JobIds, following NextToken; ``between`` runs between two pages."""
    pages: list[list[str]] = []
    token = None
    while True:
        extra = {"NextToken": token} if token else {}
        page = client.list_backend_jobs(**WHERE, MaxResults=limit, **filters, **extra)
        pages.append([job["JobId"] for job in page["Jobs"]])
        assert len(pages[-1]) <= limit
        token = page.get("NextToken")
        if not token:
            return pages
        if between is not None:
            between()


def flat(pages: list[list[str]]) -> list[str]:
    return [job_id for page in pages for job_id in page]


# -- list_order -------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
def test_orders_page_stably_while_jobs_arrive(
    order: str, start_emulator: Any, make_client: Any
) -> None:
    """12 jobs, pages of 5, two new jobs between pages: every job that existed at the first
    page is listed exactly once, in the order's sequence; arrivals land where their key puts
    them (never for newest, all at the end for oldest)."""
    emu = start_emulator(list_order=order)
    client = make_client(emu)
    before = [create(client, f"r{i}") for i in range(12)]
    arrived: list[str] = []

    def two_more() -> None:
        arrived.extend(create(client, f"late{len(arrived)}-{k}") for k in range(2))

    pages = walk_pages(client, 5, between=two_more)
    listed = flat(pages)
    assert len(pages) >= 3 and arrived
    assert len(listed) == len(set(listed))
    assert set(before) <= set(listed) <= set(before) | set(arrived)
    originals = [job_id for job_id in listed if job_id in set(before)]
    if order == "newest":
        assert listed == before[::-1]
    elif order == "oldest":
        assert listed == before + arrived
    else:
        assert originals not in (before, before[::-1])
        again = flat(walk_pages(client, 5))  # stable: the same order without arrivals
        assert [job_id for job_id in again if job_id in set(before)] == originals
        assert set(again) == set(before) | set(arrived)


def test_unordered_is_salted_with_the_seed(start_emulator: Any, make_client: Any) -> None:
    orders = []
    for seed in (1, 1, 2):
        emu = start_emulator(list_order="unordered", seed=seed)
        client = make_client(emu)
        created = [create(client, f"r{i}") for i in range(10)]
        listed = flat(walk_pages(client, 4))
        orders.append([created.index(job_id) for job_id in listed])
    assert orders[0] == orders[1] and orders[0] != orders[2]


@pytest.mark.parametrize("order", ORDERS)
def test_filters_and_page_sizes_work_in_every_order(
    order: str, start_emulator: Any, make_client: Any
) -> None:
    emu = start_emulator(list_order=order, history=15, fail_pattern="doomed")
    client = make_client(emu)
    for name in ("a", "doomed", "b"):
        create(client, name)
    client.create_backend_storage(**params_for("CreateBackendStorage", {}))
    jobs = [j for j in emu.jobs() if (j["appId"], j["backendEnvironmentName"]) == (APP, ENV)]

    def expected(**match: str) -> set[str]:
        return {j["jobId"] for j in jobs if all(j[k] == v for k, v in match.items())}

    def listed(**filters: str) -> set[str]:
        found = flat(walk_pages(client, 2, **filters))
        assert len(found) == len(set(found))
        return set(found)

    assert listed() == expected() and len(expected()) == 19
    assert listed(Operation="CreateBackendAuth") == expected(operation="CreateBackendAuth")
    assert listed(Operation="create_backend_storage") == expected(operation="CreateBackendStorage")
    assert listed(Status="FAILED") == expected(status="FAILED")
    assert listed(Operation="CreateBackendAuth", Status="COMPLETED") == expected(
        operation="CreateBackendAuth", status="COMPLETED"
    )
    one = jobs[3]["jobId"]
    assert listed(JobId=one) == {one}
    for limit in (1, 7, 25):
        assert set(flat(walk_pages(client, limit))) == expected()


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize("order", ORDERS)
def test_invalid_tokens_are_bad_requests_in_every_order(
    order: str, start_emulator: Any, make_client: Any
) -> None:
    emu = start_emulator(list_order=order, history=3)
    client = make_client(emu)
    good = client.list_backend_jobs(**WHERE, MaxResults=1)["NextToken"]
    assert client.list_backend_jobs(**WHERE, MaxResults=1, NextToken=good)["Jobs"]
    bad = ["not-a-token", _token("jobs-v1:3"), _token("jobs-v2:sideways:1:2")]
    bad += [_token("jobs-v2:newest:nan:1"), _token("jobs-v2:unordered:1.5:1"), good[:-4]]
    for token in bad:
        with pytest.raises(client.exceptions.BadRequestException, match="NextToken"):
            client.list_backend_jobs(**WHERE, NextToken=token)
    assert emu.stats()["bad_requests"] == len(bad)


def test_order_changes_at_runtime_and_a_walk_keeps_its_order(
    emu: EmulatorThread, client: Any
) -> None:
    created = [create(client, f"r{i}") for i in range(6)]
    assert flat(walk_pages(client, 4)) == created[::-1]
    emu.configure(list_order="oldest")
    first = client.list_backend_jobs(**WHERE, MaxResults=4)
    assert [j["JobId"] for j in first["Jobs"]] == created[:4]
    emu.configure(list_order="newest")  # a walk begun oldest-first continues oldest-first
    rest = client.list_backend_jobs(**WHERE, MaxResults=4, NextToken=first["NextToken"])
    assert [j["JobId"] for j in rest["Jobs"]] == created[4:]
    assert "NextToken" not in rest


# -- timestamp_format -------------------------------------------------------------------------


def _iso(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# format -> (exact shape, parser to epoch seconds, resolution of the format in seconds)
FORMATS: dict[str, tuple[str, Callable[[str], float], float]] = {
    "iso": (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp, 1e-6),
    "iso_offset": (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", _iso, 1.0),
    "epoch_s": (r"\d{10}", float, 1.0),
    "epoch_ms": (r"\d{13}", lambda text: int(text) / 1000, 1e-3),
    "opaque": (r"t-[0-9a-f]+", lambda text: int(text[2:], 16) / 1000, 1e-3),
}


def assert_written(fmt: str, text: str, epoch: float) -> None:
    """``text`` has ``fmt``'s exact shape and is ``epoch`` truncated to its resolution."""
    shape, parse_stamp, resolution = FORMATS[fmt]
    assert re.fullmatch(shape, text), (fmt, text)
    parsed = parse_stamp(text)
    assert -1e-6 <= epoch - parsed < resolution + 1e-6, (fmt, text, epoch)
    assert abs(epoch - parsed) < (1.0 if fmt in ("epoch_s", "iso_offset") else 1e-3)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_timestamp_formats_in_every_answer(fmt: str, start_emulator: Any, make_client: Any) -> None:
    emu = start_emulator(timestamp_format=fmt, job_duration=(0.03, 0.03))
    client = make_client(emu)
    job_id = create(client, "t")
    wait_until(lambda: terminal(client, job_id))
    [admin] = emu.jobs()
    listed = client.list_backend_jobs(**WHERE)["Jobs"]
    for answer in (get_job(client, job_id), listed[0]):
        assert_written(fmt, answer["CreateTime"], admin["createEpoch"])
        assert_written(fmt, answer["UpdateTime"], admin["updateEpoch"])
    updated = client.update_backend_job(**WHERE, JobId=job_id, Operation="CreateBackendAuth")
    [admin] = emu.jobs()
    assert_written(fmt, updated["CreateTime"], admin["createEpoch"])
    assert_written(fmt, updated["UpdateTime"], admin["updateEpoch"])
    assert admin["updateEpoch"] - admin["createEpoch"] >= 0.03 - 1e-6
    for key in ("create", "update"):  # the admin view stays ISO with microseconds
        assert re.fullmatch(FORMATS["iso"][0], admin[f"{key}Time"])
        assert abs(stamp(admin[f"{key}Time"]) - admin[f"{key}Epoch"]) < 2e-6


def test_format_changes_at_runtime_apply_to_existing_jobs(emu: EmulatorThread, client: Any) -> None:
    storage = params_for("CreateBackendStorage", {})
    storage["ResourceConfig"]["BucketName"] = "bucket-t"
    job_id = client.create_backend_storage(**storage)["JobId"]
    wait_until(lambda: terminal(client, job_id))
    [admin] = emu.jobs()
    for fmt in ("epoch_ms", "iso_offset", "epoch_s", "iso"):
        emu.configure(timestamp_format=fmt)
        assert_written(fmt, get_job(client, job_id)["CreateTime"], admin["createEpoch"])
        [bucket] = client.list_s3_buckets()["Buckets"]  # created when the job completed
        assert_written(fmt, bucket["CreationDate"], admin["updateEpoch"])


# -- the knobs: config, CLI, runtime updates ---------------------------------------------------


@pytest.mark.parametrize(
    "knobs",
    [
        {"list_order": "random"},
        {"timestamp_format": "rfc2822"},
        {"history": -1},
        {"history": "many"},
        {"fault_reset_after_ratio": 1.5},
    ],
)
def test_invalid_variant_knobs_are_refused(knobs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(**knobs)


def test_defaults_and_as_dict() -> None:
    shown = EmulatorConfig().as_dict()
    assert (shown["list_order"], shown["timestamp_format"]) == ("newest", "iso")
    assert (shown["history"], shown["fault_reset_after_ratio"]) == (0, 0.0)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_flags(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config_from_args(
        parse(
            *("--list-order", "unordered", "--timestamp-format", "epoch_ms"),
            *("--history", "7", "--fault-reset-after", "0.25"),
        )
    )
    assert (cfg.list_order, cfg.timestamp_format) == ("unordered", "epoch_ms")
    assert (cfg.history, cfg.fault_reset_after_ratio) == (7, 0.25)
    defaults = config_from_args(parse())
    assert (defaults.list_order, defaults.timestamp_format) == ("newest", "iso")
    assert (defaults.history, defaults.fault_reset_after_ratio) == (0, 0.0)
    assert run(parse("--history", "-1")) == 2
    assert run(parse("--fault-reset-after", "2")) == 2
    for flag, value in (("--list-order", "sideways"), ("--timestamp-format", "rfc")):
        with pytest.raises(SystemExit):
            parse(flag, value)
    assert "history" in capsys.readouterr().err


VALID = {
    "list_order": "unordered",
    "timestamp_format": "epoch_s",
    "history": 3,
    "fault_reset_after_ratio": 0.5,
}


@pytest.mark.parametrize(
    "payload",
    [
        {"list_order": "sideways"},
        {"timestamp_format": "rfc2822"},
        {"history": -2},
        {"fault_reset_after_ratio": 2},
        {**VALID, "list_order": "backwards"},  # one bad value: nothing changes
    ],
)
async def test_runtime_updates_over_http(aemu: EmulatorHandle, payload: dict[str, Any]) -> None:
    async with aiohttp.ClientSession(base_url=aemu.url) as http:
        async with http.post("/_emulator/config", json=payload) as response:
            assert response.status == 400
            assert (await response.json())["message"]
        assert (aemu.config.list_order, aemu.config.timestamp_format) == ("newest", "iso")
        assert (aemu.config.history, aemu.config.fault_reset_after_ratio) == (0, 0.0)
        async with http.post("/_emulator/config", json=VALID) as response:
            assert response.status == 200
            applied = await response.json()
        async with http.get("/_emulator/config") as response:
            assert await response.json() == applied
    assert {key: applied[key] for key in VALID} == VALID
    assert aemu.config.list_order == "unordered" and aemu.config.history == 3
