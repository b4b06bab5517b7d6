"""Remote members in a real ipykernel: Tab and ``?`` never read the instrument; the stop button stops a move."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import wait_for
from jupyter_client.manager import start_new_kernel

from pyrolab_jupyter import Lab

pytestmark = [pytest.mark.network, pytest.mark.timeout(180)]


@pytest.fixture
def kernel() -> Iterator[Any]:
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=60)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _ok(kc: Any, code: str) -> str:
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    reply = kc.execute_interactive(code, output_hook=hook, timeout=60, allow_stdin=False)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out)


def test_tab_and_question_mark_in_a_kernel_read_nothing(kernel, nameserver, daemon_factory):
    _, kc = kernel
    daemon_factory({"t.sensors": "labservices:Sensors"}, nameserver.address)
    _ok(kc, f"from pyrolab_jupyter import Lab\nslow = Lab({nameserver.address!r}).connect('t.sensors')")
    assert _ok(kc, "print(slow.reads())").strip() == "0"
    matches = kc.complete("slow.", 5, reply=True, timeout=30)["content"]["matches"]
    assert {"good", "broken", "missing", "reads", "lock"} <= set(matches), matches
    assert "good" in kc.complete("slow.go", 7, reply=True, timeout=30)["content"]["matches"]
    prop = kc.inspect("slow.good", 9, detail_level=0, reply=True, timeout=30)["content"]
    text = prop["data"]["text/plain"]
    assert "A sensor that works." in text and "0 to 10 V" in text
    method = kc.inspect("slow.reads", 10, detail_level=0, reply=True, timeout=30)["content"]["data"]["text/plain"]
    assert "Call signature" not in method and "How many property reads" in method
    assert _ok(kc, "print(slow.reads())").strip() == "0"  # neither Tab nor ? read a property


def test_the_kernels_stop_button_stops_a_move(kernel, nameserver, daemon_factory):
    km, kc = kernel
    daemon_factory({"t.stage": "pyrolab_jupyter.instruments.sim:Stage"}, nameserver.address)
    stage = Lab(nameserver.address).connect("t.stage")
    stage.velocity = 1.0
    _ok(kc, f"from pyrolab_jupyter import Lab\nstage = Lab({nameserver.address!r}).connect('t.stage')")
    msg_id = kc.execute("stage.move_to(50.0)")
    wait_for(lambda: stage.moving, timeout=30)
    km.interrupt_kernel()  # what JupyterLab's stop button does
    reply = kc.get_shell_msg(timeout=30)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=30)
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
    wait_for(lambda: stage.moving is False, timeout=10)
    assert stage.position < 10.0
