"""Jobs: schedule and durations, failures, visibility, cancellation, conflicts, listing."""

from __future__ import annotations

import time
from typing import Any

import pytest

from orchestrator.emulator import EmulatorHandle, EmulatorThread
from tests.emulator.support import (
    CLOCK_SLACK,
    TERMINAL,
    async_wait_until,
    auth_params,
    get_job,
    stamp,
    terminal,
    wait_until,
)
from tests.emulator.world import APP, ENV


def test_jobs_follow_their_schedule(start_emulator: Any, make_client: Any) -> None:
    """1. Twenty jobs with durations drawn uniformly in [40 ms, 120 ms].
    2. Every answer is consistent with the schedule: a job reported non-terminal was asked
       before its terminal UpdateTime, a terminal one after it.
    3. Each job ended COMPLETED within the bounds (IN_PROGRESS in between: the next test)."""
    emu = start_emulator(
        job_duration=(0.04, 0.12), job_duration_dist="uniform", conflict_mode="accept"
    )
    client = make_client(emu)
    created = [client.create_backend_auth(**auth_params(f"a{i}")) for i in range(20)]
    assert {c["Status"] for c in created} == {"REQUESTED"}
    observations: list[tuple[float, float, dict[str, Any]]] = []

    def all_terminal() -> bool:
        done = True
        for c in created:
            before = time.time()
            job = get_job(client, c["JobId"])
            observations.append((before, time.time(), job))
            done = done and job["Status"] in TERMINAL
        return done

    wait_until(all_terminal)
    final = {c["JobId"]: get_job(client, c["JobId"]) for c in created}
    durations = []
    for job in final.values():
        assert job["Status"] == "COMPLETED"
        durations.append(stamp(job["UpdateTime"]) - stamp(job["CreateTime"]))
    assert all(0.04 - 1e-5 <= d <= 0.12 + 1e-5 for d in durations), durations
    assert len({round(d, 4) for d in durations}) > 5  # drawn, not constant
    for before, after, job in observations:
        end = stamp(final[job["JobId"]]["UpdateTime"])
        if job["Status"] in TERMINAL:
            assert after >= end - CLOCK_SLACK
        else:
            assert before <= end + CLOCK_SLACK
            assert job["Status"] in {"REQUESTED", "IN_PROGRESS"}


def test_a_job_is_in_progress_for_the_last_three_quarters_of_its_duration(
    start_emulator: Any, make_client: Any
) -> None:
    """A 4 s job: REQUESTED at first, IN_PROGRESS from 1 s, COMPLETED at 4 s (a window wide
    enough for a loaded machine to see it; the short jobs above can all finish unseen)."""
    emu = start_emulator(job_duration=(4.0, 4.0), job_duration_dist="fixed")
    client = make_client(emu)
    created = client.create_backend_auth(**auth_params("slow"))
    assert created["Status"] == "REQUESTED"

    def moved_on() -> str | None:
        status = str(get_job(client, created["JobId"])["Status"])
        return None if status == "REQUESTED" else status

    assert wait_until(moved_on, timeout=4.0) == "IN_PROGRESS"


@pytest.mark.parametrize(
    ("dist", "bounds"), [("fixed", (0.05, 0.5)), ("exponential", (0.01, 0.06))]
)
def test_duration_distributions(
    dist: str, bounds: tuple[float, float], start_emulator: Any, make_client: Any
) -> None:
    """fixed: every job takes exactly min; exponential: drawn, clipped to [min, max]."""
    emu = start_emulator(job_duration=bounds, job_duration_dist=dist, conflict_mode="accept")
    client = make_client(emu)
    ids = [client.create_backend_auth(**auth_params(f"a{i}"))["JobId"] for i in range(8)]
    jobs = [wait_until(lambda j=j: terminal(client, j), timeout=5) for j in ids]
    durations = [stamp(j["UpdateTime"]) - stamp(j["CreateTime"]) for j in jobs]
    if dist == "fixed":
        assert all(abs(d - bounds[0]) < 2e-6 for d in durations), durations
    else:
        assert all(bounds[0] - 1e-5 <= d <= bounds[1] + 1e-5 for d in durations), durations
        assert len({round(d, 5) for d in durations}) > 1


def test_fail_pattern_fails_matching_jobs_and_leaves_no_effect(
    start_emulator: Any, make_client: Any
) -> None:
    emu = start_emulator(fail_pattern=r"x-fail-\d", job_duration=(0.01, 0.01))
    client = make_client(emu)
    doomed = client.create_backend_auth(**auth_params("x-fail-1"))["JobId"]
    failed = wait_until(lambda: terminal(client, doomed))
    fine = client.create_backend_auth(**auth_params("fine"))["JobId"]
    completed = wait_until(lambda: terminal(client, fine))
    assert failed["Status"] == "FAILED" and "fail_pattern" in failed["Error"]
    assert completed["Status"] == "COMPLETED" and "Error" not in completed
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_backend_auth(AppId=APP, BackendEnvironmentName=ENV, ResourceName="x-fail-1")
    assert (
        client.get_backend_auth(AppId=APP, BackendEnvironmentName=ENV, ResourceName="fine")[
            "ResourceName"
        ]
        == "fine"
    )
    assert emu.stats()["jobs"]["FAILED"] == 1


async def test_fail_ratio_one_fails_every_job(aemu: EmulatorHandle, aclient: Any) -> None:
    aemu.configure(fail_ratio=1.0, conflict_mode="accept")
    for i in range(5):
        await aclient.create_backend_auth(**auth_params(f"a{i}"))
    listed = await aclient.list_backend_jobs(AppId=APP, BackendEnvironmentName=ENV)
    assert [j["Status"] for j in listed["Jobs"]] == ["FAILED"] * 5
    assert all("fail_ratio" in j["Error"] for j in listed["Jobs"])
    assert aemu.stats()["jobs"]["FAILED"] == 5


def test_effect_applies_only_when_the_job_completes(emu: EmulatorThread, client: Any) -> None:
    emu.configure(job_duration=(0.1, 0.1))
    job_id = client.create_backend_auth(**auth_params("later"))["JobId"]
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_backend_auth(AppId=APP, BackendEnvironmentName=ENV, ResourceName="later")
    wait_until(lambda: terminal(client, job_id))
    found = client.get_backend_auth(AppId=APP, BackendEnvironmentName=ENV, ResourceName="later")
    assert found["ResourceConfig"] == auth_params("later")["ResourceConfig"]


def test_visibility_delay_hides_new_jobs(emu: EmulatorThread, client: Any) -> None:
    emu.configure(visibility_delay=0.2)
    began = time.monotonic()
    job_id = client.create_backend_auth(**auth_params("hidden"))["JobId"]
    with pytest.raises(client.exceptions.NotFoundException):
        get_job(client, job_id)
    listed = client.list_backend_jobs(AppId=APP, BackendEnvironmentName=ENV)["Jobs"]
    assert job_id not in {j["JobId"] for j in listed}
    assert [j["visible"] for j in emu.jobs()] == [False]

    def visible() -> bool:
        try:
            get_job(client, job_id)
        except client.exceptions.NotFoundException:
            return False
        return True

    wait_until(visible)
    assert time.monotonic() - began >= 0.2
    listed = client.list_backend_jobs(AppId=APP, BackendEnvironmentName=ENV)["Jobs"]
    assert job_id in {j["JobId"] for j in listed}


def test_update_backend_job_cancels(emu: EmulatorThread, client: Any) -> None:
    """A CANCELLED job never advances nor takes effect, and frees its environment."""
    emu.configure(job_duration=(0.1, 0.1))
    first = client.create_backend_auth(**auth_params("cancelled"))["JobId"]
    updated = client.update_backend_job(
        AppId=APP, BackendEnvironmentName=ENV, JobId=first, Status="CANCELLED"
    )
    assert updated["Status"] == "CANCELLED"
    second = client.create_backend_auth(**auth_params("kept"))["JobId"]  # no conflict now
    wait_until(lambda: terminal(client, second))  # ends after the first job would have
    assert get_job(client, first)["Status"] == "CANCELLED"
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_backend_auth(AppId=APP, BackendEnvironmentName=ENV, ResourceName="cancelled")
    assert emu.stats()["conflicts"] == 0


def test_conflict_reject(emu: EmulatorThread, client: Any) -> None:
    emu.configure(job_duration=(0.2, 0.2))
    client.create_backend_auth(**auth_params("one"))
    with pytest.raises(client.exceptions.BadRequestException, match="conflicts with a job"):
        client.create_backend_auth(**auth_params("two"))
    client.create_backend_auth(**auth_params("elsewhere", env="prod"))  # other env: fine
    stats = emu.stats()
    assert stats["conflicts"] == 1 and stats["bad_requests"] == 1
    assert sorted(j["resourceName"] for j in emu.jobs()) == ["elsewhere", "one"]


def test_conflict_accept(emu: EmulatorThread, client: Any) -> None:
    emu.configure(job_duration=(0.2, 0.2), conflict_mode="accept")
    client.create_backend_auth(**auth_params("one"))
    client.create_backend_auth(**auth_params("two"))
    assert emu.stats()["conflicts"] == 1
    assert sorted(j["resourceName"] for j in emu.jobs()) == ["one", "two"]


async def test_jobs_complete_with_aiobotocore(aemu: EmulatorHandle, aclient: Any) -> None:
    aemu.configure(job_duration=(0.02, 0.05))
    job_id = (await aclient.create_backend_auth(**auth_params("async")))["JobId"]

    async def finished() -> dict[str, Any] | None:
        job = await aclient.get_backend_job(AppId=APP, BackendEnvironmentName=ENV, JobId=job_id)
        return job if job["Status"] in TERMINAL else None

    job = await async_wait_until(finished)
    assert job["Status"] == "COMPLETED"
    assert 0.02 - 1e-5 <= stamp(job["UpdateTime"]) - stamp(job["CreateTime"]) <= 0.05 + 1e-5
