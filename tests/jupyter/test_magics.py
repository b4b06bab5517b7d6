"""``%pyrolab`` in a real ipykernel: each subcommand, its errors, Tab completion and kernel hosting."""

from __future__ import annotations

import dataclasses
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import wait_for
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel

from pyrolab_jupyter import Lab

pytestmark = [pytest.mark.network, pytest.mark.timeout(180)]

SERVICE_CELL = '''
from pyrolab_jupyter import Service, expose

class Thing(Service):
    """A thing with a value."""

    def __init__(self, value: float = 1.0) -> None:
        self._value = value

    @expose
    @property
    def value(self) -> float:
        """The value."""
        return self._value

    @expose
    def double(self, x: float) -> float:
        return 2 * x
'''

LOAD_CELL = '''
import sys, threading, time
_before = {t.ident for t in threading.enumerate()}
_t0 = time.perf_counter()
get_ipython().run_line_magic("load_ext", "pyrolab_jupyter")
_dt = time.perf_counter() - _t0
print("LOAD", _dt, sorted(t.name for t in threading.enumerate() if t.ident not in _before))
'''


@dataclasses.dataclass
class Result:
    status: str
    stdout: str
    stderr: str
    data: list[dict[str, Any]]  # display_data and execute_result bundles, in order
    error: dict[str, Any] | None

    @property
    def text(self) -> str:
        return self.stdout + self.stderr + "".join(d.get("text/plain", "") for d in self.data)


def run(kc: BlockingKernelClient, code: str, timeout: float = 60) -> Result:
    messages: list[dict[str, Any]] = []
    reply = kc.execute_interactive(code, output_hook=messages.append, timeout=timeout, allow_stdin=False)
    streams = {"stdout": "", "stderr": ""}
    data: list[dict[str, Any]] = []
    error = None
    for msg in messages:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            streams[content["name"]] += content["text"]
        elif kind in ("display_data", "execute_result"):
            data.append(content["data"])
        elif kind == "error":
            error = content
    if reply["content"]["status"] == "error" and error is None:  # a UsageError sends no error message
        error = reply["content"]
    return Result(reply["content"]["status"], streams["stdout"], streams["stderr"], data, error)


def ok(kc: BlockingKernelClient, code: str) -> Result:
    result = run(kc, code)
    assert result.status == "ok", (result.stderr, result.error)
    return result


def usage_error(kc: BlockingKernelClient, code: str) -> str:
    """The message of a UsageError; fails if anything printed a traceback."""
    result = run(kc, code)
    assert result.status == "error", result
    assert result.error is not None and result.error["ename"] == "UsageError", result.error
    assert "Traceback" not in result.stderr and not any("Traceback" in line for line in result.error["traceback"])
    return result.stderr + "".join(result.error["traceback"])


def complete(kc: BlockingKernelClient, code: str) -> list[str]:
    reply = kc.complete(code, len(code), reply=True, timeout=30)
    return list(reply["content"]["matches"])


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def bindable(port: int) -> bool:
    """Whether a new server could listen on ``port`` now (as Pyro's and every server's SO_REUSEADDR allows)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
        return True


def new_kernel() -> tuple[KernelManager, BlockingKernelClient]:
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=60)
    return km, kc


def stop_kernel(km: KernelManager, kc: BlockingKernelClient) -> None:
    try:
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=False)


@dataclasses.dataclass
class Kernel:
    kc: BlockingKernelClient
    load: Result
    ns_address: str
    daemon_address: str


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    """One kernel for the module: extension loaded, a nameserver and a daemon hosted in it."""
    km, kc = new_kernel()
    try:
        load = ok(kc, LOAD_CELL)
        ns = ok(kc, "%pyrolab nameserver start --port 0 --check-interval 0.5")
        ns_address = re.search(r"nameserver running at (\S+)", ns.stdout).group(1)  # type: ignore[union-attr]
        ok(kc, SERVICE_CELL)
        d = ok(kc, "%pyrolab daemon start Thing --name lab.thing value=2.5")
        daemon_address = re.search(r"lab.thing running at (\S+)", d.stdout).group(1)  # type: ignore[union-attr]
        assert f"registered with {ns_address}" in d.stdout
        yield Kernel(kc, load, ns_address, daemon_address)
    finally:
        stop_kernel(km, kc)


# loading


def test_load_ext_is_fast_and_starts_no_thread(kernel: Kernel) -> None:
    _, seconds, threads = kernel.load.stdout.split(maxsplit=2)
    assert float(seconds) < 3.0
    assert threads.strip() == "[]"


def test_help_lists_every_subcommand(kernel: Kernel) -> None:
    out = ok(kernel.kc, "%pyrolab help").stdout
    for sub in ("nameserver start", "daemon start", "use", "ls", "connect", "panel", "lock", "unlock", "status"):
        assert f"%pyrolab {sub}" in out
    assert "--lease" in ok(kernel.kc, "%pyrolab help lock").stdout


# mistakes: short messages, never a traceback


def test_mistyped_subcommand_suggests(kernel: Kernel) -> None:
    message = usage_error(kernel.kc, "%pyrolab conect lab.thing")
    assert "did you mean 'connect'?" in message
    assert "usage: %pyrolab" in message


def test_mistyped_action_and_option_suggest(kernel: Kernel) -> None:
    assert "did you mean 'start'?" in usage_error(kernel.kc, "%pyrolab nameserver strat")
    assert "did you mean --port?" in usage_error(kernel.kc, "%pyrolab nameserver start --prot 0")
    assert "did you mean Thing?" in usage_error(kernel.kc, "%pyrolab daemon start Thign --name x")


def test_unknown_service_names_the_nameserver_and_close_names(kernel: Kernel) -> None:
    message = usage_error(kernel.kc, "%pyrolab connect lab.thin")
    assert kernel.ns_address in message
    assert "lab.thing" in message


def test_use_validates_the_address(kernel: Kernel) -> None:
    assert "nameserver address" in usage_error(kernel.kc, "%pyrolab use nowhere:notaport")


# hosting


def test_rerunning_start_cells_reuses(kernel: Kernel) -> None:
    ns = ok(kernel.kc, "%pyrolab nameserver start --port 0")
    assert f"already running at {kernel.ns_address}" in ns.stdout
    d = ok(kernel.kc, "%pyrolab daemon start Thing --name lab.thing value=2.5")
    assert f"already running at {kernel.daemon_address}" in d.stdout
    changed = ok(kernel.kc, "%pyrolab daemon start Thing --name lab.thing value=3.5")
    assert "--restart" in changed.stdout


def test_status_lists_what_the_kernel_hosts(kernel: Kernel) -> None:
    result = ok(kernel.kc, "%pyrolab status")
    text = result.data[0]["text/plain"]
    assert kernel.ns_address in text and kernel.daemon_address in text and "lab.thing" in text
    assert "<table>" in result.data[0]["text/html"]


def test_daemon_start_module_class_and_stop_frees_its_port(kernel: Kernel) -> None:
    out = ok(kernel.kc, "%pyrolab daemon start pyrolab_jupyter.instruments.sim:Laser --name lab.laser").stdout
    address = re.search(r"lab.laser running at (\S+)", out).group(1)  # type: ignore[union-attr]
    assert "lab.laser" in Lab(kernel.ns_address, timeout=5).names()
    stopped = ok(kernel.kc, "%pyrolab daemon stop lab.laser").stdout
    assert "stopped" in stopped
    assert bindable(port_of(address))
    assert "lab.laser" not in Lab(kernel.ns_address, timeout=5).names()


def test_daemon_start_serves_any_class_through_an_adapter(kernel: Kernel) -> None:
    code = ("class PlainMeter:\n"
            "    'Not a Service.'\n"
            "    def __init__(self, offset=0.0):\n"
            "        self.offset = offset\n"
            "    def read(self, gain: float = 1.0) -> float:\n"
            "        return 2.0 * gain + self.offset\n")
    ok(kernel.kc, code)
    out = ok(kernel.kc, "%pyrolab daemon start PlainMeter offset=0.5 --name lab.meter --adapter plain").stdout
    assert "lab.meter running at" in out
    meter = Lab(kernel.ns_address, timeout=5).connect("lab.meter")
    try:
        assert meter.read(gain=2) == 4.5
        assert meter.offset == 0.5
    finally:
        meter.disconnect()
    ok(kernel.kc, "%pyrolab daemon stop lab.meter")


def test_hosted_logs_stay_out_of_cells(kernel: Kernel) -> None:
    code = (
        "import logging, threading\n"
        "_th = threading.Thread(target=lambda: logging.getLogger('pyrolab_jupyter.core.daemon')"
        ".warning('daemon-said-hello'))\n"
        "_th.start(); _th.join()"
    )
    result = ok(kernel.kc, code)
    later = ok(kernel.kc, "time.sleep(0.5)")  # nor in the next cell (ipykernel forwards fd 2 as it comes)
    assert "daemon-said-hello" not in result.text + later.text
    assert "daemon-said-hello" in ok(kernel.kc, "%pyrolab status").data[0]["text/plain"]


# using services


def test_ls_shows_an_html_table_and_text(kernel: Kernel) -> None:
    result = ok(kernel.kc, "%pyrolab ls")
    bundle = result.data[0]
    assert 'data-service="lab.thing"' in bundle["text/html"]
    assert "online" in bundle["text/plain"] and "lab.thing" in bundle["text/plain"]
    assert re.search(r'<td title="[^"]+">(just now|\d+ s ago)</td>', bundle["text/html"]), bundle["text/html"]


def test_connect_as_var_and_use_from_a_thread(kernel: Kernel) -> None:
    result = ok(kernel.kc, "%pyrolab connect lab.thing as thing")
    assert result.data, "connect displays the service"
    assert ok(kernel.kc, "print(thing.value, thing.double(4))").stdout.strip() == "2.5 8.0"
    code = (
        "import threading\n"
        "_seen = []\n"
        "_th = threading.Thread(target=lambda: _seen.append((thing.value, thing.double(1.5))))\n"
        "_th.start(); _th.join(20)\n"
        "print(_seen)"
    )
    assert ok(kernel.kc, code).stdout.strip() == "[(2.5, 3.0)]"


def test_a_remote_service_as_cell_result_shows_rich_view(kernel: Kernel) -> None:
    result = ok(kernel.kc, "%pyrolab connect lab.thing as thing")
    panels = [d for d in result.data if "application/vnd.jupyter.widget-view+json" in d]
    assert panels, f"the widget panel was not displayed: {result.data}"
    result = ok(kernel.kc, "thing")  # a RemoteService as a cell's result
    assert any("application/vnd.jupyter.widget-view+json" in d for d in result.data), result.data


TEN_DISPLAYS = """
import threading
from IPython.display import display
_threads = threading.active_count()
for _ in range(10):
    display(thing)
print("SUBS", len(thing._pyrolab_subscriptions), "THREADS", threading.active_count() - _threads)
"""


def test_ten_displays_are_one_live_panel_with_one_subscription(kernel: Kernel) -> None:
    ok(kernel.kc, "%pyrolab connect lab.thing as thing")
    result = ok(kernel.kc, TEN_DISPLAYS)
    assert "SUBS 1 THREADS 0" in result.stdout, result.stdout
    views = [d["application/vnd.jupyter.widget-view+json"]["model_id"] for d in result.data]
    assert len(views) == 10 and len(set(views)) == 1  # ten views of one panel
    # the display bundle also carries the values as HTML, for viewers that do not render widgets
    assert all("<td><code>value</code></td><td>2.5</td>" in d["text/html"] for d in result.data)


CONNECT_TIMED = """
import time
from pyrolab_jupyter.core.client import RemoteService
_describes = []
_call = RemoteService._pyrolab_call
def _counting(self, kind, name, *rest):
    if name == "describe":
        _describes.append(name)
    return _call(self, kind, name, *rest)
RemoteService._pyrolab_call = _counting
try:
    _t0 = time.perf_counter()
    get_ipython().run_line_magic("pyrolab", "connect lab.thing as timed --timeout 5")
    _dt = time.perf_counter() - _t0
finally:
    RemoteService._pyrolab_call = _call
print("CONNECT", round(_dt * 1000, 1), "ms", "DESCRIBES", len(_describes))
"""


def test_connect_draws_the_panel_with_one_describe_round_trip(kernel: Kernel) -> None:
    result = ok(kernel.kc, CONNECT_TIMED)
    assert "DESCRIBES 1" in result.stdout, result.stdout
    assert any("application/vnd.jupyter.widget-view+json" in d for d in result.data)
    print(result.stdout.strip())  # `%pyrolab connect` -> panel drawn, in a kernel (reported, not asserted)


def test_panel_lock_unlock(kernel: Kernel) -> None:
    ok(kernel.kc, "%pyrolab connect lab.thing as thing")
    for target in ("thing", "lab.thing"):
        shown = ok(kernel.kc, f"%pyrolab panel {target}").data
        assert any("application/vnd.jupyter.widget-view+json" in d for d in shown), shown
    locked = ok(kernel.kc, "%pyrolab lock lab.thing --lease 30").stdout
    assert "locked by" in locked
    # the daemon registers the holder off the call, on its heartbeat thread
    holder = wait_for(lambda: Lab(kernel.ns_address, timeout=5).entry("lab.thing")["locked_by"], timeout=5)
    assert holder and holder in locked
    assert "unlocked" in ok(kernel.kc, "%pyrolab unlock thing").stdout
    assert "held no lock" in ok(kernel.kc, "%pyrolab unlock lab.thing").stdout


def test_use_and_config_choose_the_nameserver(kernel: Kernel) -> None:
    try:
        out = ok(kernel.kc, "%pyrolab use 127.0.0.1:1").stdout
        assert "no nameserver answers" in out
        ok(kernel.kc, f"%config PyroLab.nameserver = '{kernel.ns_address}'")
        assert kernel.ns_address in ok(kernel.kc, "%pyrolab use").stdout
    finally:
        ok(kernel.kc, f"%pyrolab use {kernel.ns_address}")


def test_several_nameservers_are_asked_together(kernel: Kernel) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    try:
        out = ok(kernel.kc, f"%pyrolab use {dead},{kernel.ns_address}").stdout
        assert f"{dead},{kernel.ns_address}" in out and "it answers" in out
        listing = ok(kernel.kc, "%pyrolab ls").text
        assert f"{dead}, {kernel.ns_address}" in listing and "lab.thing" in listing
        assert "ok" in ok(kernel.kc, "thing = %pyrolab connect lab.thing\nprint('ok')").stdout
    finally:
        ok(kernel.kc, f"%pyrolab use {kernel.ns_address}")


# Tab completion through the kernel's complete_request


def test_complete_subcommands_options_and_names(kernel: Kernel) -> None:
    assert complete(kernel.kc, "%pyrolab co") == ["connect"]
    assert "--port" in complete(kernel.kc, "%pyrolab nameserver start --p")
    assert "lab.thing" in complete(kernel.kc, "%pyrolab connect ")
    assert complete(kernel.kc, "%pyrolab connect lab.th") == ["lab.thing"]
    assert "Thing" in complete(kernel.kc, "%pyrolab daemon start Th")


def test_complete_stays_quick_when_the_nameserver_is_down(kernel: Kernel) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    try:
        ok(kernel.kc, f"%pyrolab use 127.0.0.1:{dead}")
        for _ in range(3):
            start = time.monotonic()
            assert "lab.thing" not in complete(kernel.kc, "%pyrolab connect ")
            assert time.monotonic() - start < 2.0
    finally:
        ok(kernel.kc, f"%pyrolab use {kernel.ns_address}")


# what the kernel hosts ends with it


def test_restart_and_shutdown_free_the_hosted_ports(nameserver: Any) -> None:
    km, kc = new_kernel()
    try:
        ok(kc, "%load_ext pyrolab_jupyter")
        ns_out = ok(kc, "%pyrolab nameserver start --port 0").stdout
        ns_port = port_of(re.search(r"nameserver running at (\S+)", ns_out).group(1))  # type: ignore[union-attr]
        ok(kc, SERVICE_CELL)
        ok(kc, f"%pyrolab use {nameserver.address}")  # a nameserver outside the kernel
        d_out = ok(kc, "%pyrolab daemon start Thing --name lab.outside --port 0").stdout
        d_port = port_of(re.search(r"running at (\S+)", d_out).group(1))  # type: ignore[union-attr]
        assert "lab.outside" in Lab(nameserver.address, timeout=5).names()

        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=60)
        assert bindable(ns_port) and bindable(d_port)
        # the old kernel unregistered its daemon on its way out (not merely killed)
        assert "lab.outside" not in Lab(nameserver.address, timeout=5).names()
        ok(kc, "%load_ext pyrolab_jupyter")
        again = ok(kc, f"%pyrolab nameserver start --port {ns_port}").stdout
        assert f"nameserver running at 127.0.0.1:{ns_port}" in again
    finally:
        start = time.monotonic()
        stop_kernel(km, kc)
        took = time.monotonic() - start
    assert not km.is_alive()
    assert took < km.shutdown_wait_time, "the kernel had to be killed: something kept it alive"
    assert bindable(ns_port)


def test_changes_from_a_notebook_name_its_cell_in_the_audit_trail(kernel: Kernel) -> None:
    ok(kernel.kc, "%pyrolab connect lab.thing as audited_thing")
    ok(kernel.kc, "__session__ = 'scan.ipynb'")  # what ipykernel sets for a notebook's kernel
    ok(kernel.kc, "audited_thing.lock(lease=5).release()")
    records = Lab(kernel.ns_address, timeout=10).connect("lab.thing").history(n=2)
    assert [r["kind"] for r in records] == ["lock", "unlock"]
    assert records[0]["notebook"] == "scan.ipynb"
    assert isinstance(records[0]["execution_count"], int) and records[0]["execution_count"] > 0
