"""The worker pool: bounded, started on demand, daemon threads."""

from __future__ import annotations

import threading

from conftest import wait_for

from pyrolab_jupyter.core.workers import WorkerPool


def test_pool_never_exceeds_its_size_and_runs_every_job() -> None:
    pool = WorkerPool(4)
    gate = threading.Event()
    ran: list[tuple[int, bool]] = []  # (thread, daemon) of every job

    def job() -> None:
        gate.wait(10)
        ran.append((threading.get_ident(), threading.current_thread().daemon))

    for _ in range(50):
        pool.submit(job)
    gate.set()
    wait_for(lambda: len(ran) == 50, timeout=20)
    pool.shutdown()
    assert len({ident for ident, _ in ran}) <= 4
    assert all(daemon for _, daemon in ran)  # a hung job never keeps the process from exiting


def test_a_failing_job_does_not_take_its_worker() -> None:
    pool = WorkerPool(1)
    done = threading.Event()
    pool.submit(lambda: 1 / 0)
    pool.submit(done.set)
    assert done.wait(10)
    pool.shutdown()
