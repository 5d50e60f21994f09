"""The inference lane: critical work first, background work only when the cores are free,
queued background work dropped when critical work arrives, a quiet time after critical work."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from parley_stt.providers.inference_lane import InferenceLane

WAIT_S = 5.0


class Jobs:
    """Callables that note the order they ran in; ``held`` ones wait until released."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def quick(self, name: str) -> Callable[[], str]:
        def run() -> str:
            self.ran.append(name)
            return name

        return run

    def held(self, name: str) -> Callable[[], str]:
        def run() -> str:
            self.ran.append(name)
            self.started.set()
            assert self.release.wait(WAIT_S)
            return name

        return run

    def wait_started(self) -> None:
        assert self.started.wait(WAIT_S)


def test_a_final_waits_for_the_running_partial_only_and_queued_partials_are_dropped() -> None:
    lane, jobs = InferenceLane("test-lane"), Jobs()
    running = lane.background(jobs.held("running partial"))
    jobs.wait_started()
    queued = lane.background(jobs.quick("queued partial"))

    final = lane.critical(jobs.quick("final"))
    asked_meanwhile = lane.background(jobs.quick("partial asked while the final waits"))

    assert queued.result(WAIT_S) is None  # dropped the moment the final was asked for
    assert asked_meanwhile.done()
    assert asked_meanwhile.result() is None
    assert not final.done()  # the running partial cannot be stopped...
    jobs.release.set()
    assert final.result(WAIT_S) == "final"  # ...but nothing else comes before the final
    assert running.result(WAIT_S) == "running partial"
    assert jobs.ran == ["running partial", "final"]


def test_critical_work_runs_in_order_before_background_work() -> None:
    lane, jobs = InferenceLane("test-lane"), Jobs()
    first = lane.critical(jobs.held("final 1"))
    jobs.wait_started()
    later = [lane.critical(jobs.quick(f"final {i}")) for i in (2, 3)]
    skipped = lane.background(jobs.quick("partial"))

    jobs.release.set()

    assert [f.result(WAIT_S) for f in (first, *later)] == ["final 1", "final 2", "final 3"]
    assert skipped.result(WAIT_S) is None
    assert jobs.ran == ["final 1", "final 2", "final 3"]


def test_background_work_runs_when_nothing_critical_is_there() -> None:
    lane, jobs = InferenceLane("test-lane"), Jobs()

    results = [lane.background(jobs.quick(f"partial {i}")) for i in (1, 2)]

    assert [f.result(WAIT_S) for f in results] == ["partial 1", "partial 2"]
    assert jobs.ran == ["partial 1", "partial 2"]


def test_background_work_waits_out_the_quiet_time_after_critical_work() -> None:
    now = [100.0]
    lane = InferenceLane("test-lane", quiet_after_critical_s=1.0, clock=lambda: now[0])
    jobs = Jobs()
    assert lane.critical(jobs.quick("final")).result(WAIT_S) == "final"

    now[0] = 100.9  # the answer is probably still being computed
    during = lane.background(jobs.quick("partial during"))
    now[0] = 101.0
    after = lane.background(jobs.quick("partial after"))

    assert during.result(WAIT_S) is None
    assert after.result(WAIT_S) == "partial after"
    assert jobs.ran == ["final", "partial after"]


def test_critical_work_cancelled_before_it_runs_is_dropped_and_keeps_no_one_waiting() -> None:
    lane, jobs = InferenceLane("test-lane", quiet_after_critical_s=60.0), Jobs()
    busy = lane.background(jobs.held("partial"))
    jobs.wait_started()
    abandoned = lane.critical(jobs.quick("speculative final"))

    assert abandoned.cancel()
    jobs.release.set()
    assert busy.result(WAIT_S) == "partial"

    # Once the lane has dropped it, partials run again, and no quiet time began: it never ran.
    deadline = time.monotonic() + WAIT_S
    while (result := lane.background(jobs.quick("next partial")).result(WAIT_S)) is None:
        assert time.monotonic() < deadline, "partials are still refused"
        time.sleep(0.01)
    assert result == "next partial"
    assert "speculative final" not in jobs.ran


def test_a_failure_reaches_its_caller_and_the_lane_goes_on() -> None:
    lane, jobs = InferenceLane("test-lane"), Jobs()

    def broken() -> str:
        raise RuntimeError("the model fell over")

    failed = lane.critical(broken)

    with pytest.raises(RuntimeError, match="fell over"):
        failed.result(WAIT_S)
    assert lane.critical(jobs.quick("final")).result(WAIT_S) == "final"
    assert lane.background(jobs.quick("partial")).result(WAIT_S) == "partial"


def test_work_runs_on_the_lanes_own_thread() -> None:
    lane = InferenceLane("test-lane-thread")

    name = lane.critical(lambda: threading.current_thread().name).result(WAIT_S)

    assert name.startswith("test-lane-thread")
