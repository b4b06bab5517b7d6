"""What the daemon refuses to host: services that would be hidden behind RemoteService's own API."""

from __future__ import annotations

import time

import pytest

from pyrolab_jupyter.core.servant import make_servant
from pyrolab_jupyter.core.service import Service, expose


class Clashing(Service):
    @expose
    def read(self) -> float:  # fine: an instrument's read() is not shadowed
        return 1.0

    @expose
    def lock(self) -> None: ...


def test_reserved_client_names_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="exposes lock, reserved for the client's own API"):
        make_servant("x", Clashing(), host=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("thread_safe, running", [(False, 1), (True, 32)])
def test_a_busy_service_answers_service_busy_naming_the_call(thread_safe: bool, running: int) -> None:
    import threading

    from Pyro5.callcontext import current_context

    from pyrolab_jupyter.core.servant import _Gate
    from pyrolab_jupyter.core.wire import WAIT
    from pyrolab_jupyter.errors import ServiceBusy

    gate = _Gate("lab.stage", thread_safe)
    release = threading.Event()

    def hold() -> None:
        with gate.enter("move_to()", lambda: "alice@pc (pid 1)"):
            release.wait(30)

    holders = [threading.Thread(target=hold, daemon=True) for _ in range(running)]
    for thread in holders:
        thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(gate._running) < running and time.monotonic() < deadline:
            time.sleep(0.01)
        current_context.annotations = {WAIT: b"0.5"}  # this caller waits half a second
        with pytest.raises(ServiceBusy, match=r"lab.stage.home\(\): the service is busy with .*move_to\(\) "
                                              r"\(called by alice@pc \(pid 1\)"):
            with gate.enter("home()", lambda: "bob"):
                pass
    finally:
        current_context.annotations = {}
        release.set()
        for thread in holders:
            thread.join(10)
    with gate.enter("home()", lambda: "bob"):  # free again
        pass
