"""The worker pool: bounded, started on demand, daemon threads."""

from __future__ import annotations

import threading

from conftest import wait_for

from pyrolab_jupyter.core.workers import WorkerPool


def test_pool_never_exceeds_its_size_and_runs_every_job() -> None:
    pool = WorkerPool(4)
    gate = threading.Event()
    done: list[int] = []
    before = threading.active_count()
    for i in range(50):
        pool.submit(lambda i=i: (gate.wait(10), done.append(i)))
    wait_for(lambda: threading.active_count() - before == 4, timeout=10)
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("pyrolab-worker"))
    gate.set()
    wait_for(lambda: len(done) == 50, timeout=10)
    assert threading.active_count() - before <= 4
    pool.shutdown()
    wait_for(lambda: threading.active_count() == before, timeout=10)


def test_a_failing_job_does_not_take_its_worker() -> None:
    pool = WorkerPool(1)
    done = threading.Event()
    pool.submit(lambda: 1 / 0)
    pool.submit(done.set)
    assert done.wait(10)
    pool.shutdown()
