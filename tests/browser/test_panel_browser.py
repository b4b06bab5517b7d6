"""In a real JupyterLab in headless Chromium: panels render, their buttons act, refusals show, Stop stops."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from pyrolab_jupyter import Lab

pytestmark = [
    pytest.mark.browser,
    pytest.mark.network,
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "panel.png"

CELLS = [
    """\
from pyrolab_jupyter import Lab, start_daemon, start_nameserver
from pyrolab_jupyter.instruments.sim import Laser, Stage
from pyrolab_jupyter.jupyter import panel

ns = start_nameserver(host="127.0.0.1", port={ns_port}, check_interval=1.0)
daemon = start_daemon({{"lab.laser": Laser(), "lab.stage": Stage(velocity_mm_s=5.0)}}, nameserver=ns.uri)
laser = Lab(ns.address).connect("lab.laser")
stage = Lab(ns.address).connect("lab.stage")
laser.set_power(12.5)""",
    "panel(laser)",
    "panel(stage)",
]


KERNEL_READY = """() => {
    const kernel = window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel;
    return kernel?.connectionStatus === "connected" && kernel?.status === "idle";
}"""


def _write_notebook(root: Path, ns_port: int) -> str:
    nb = new_notebook(cells=[new_code_cell(c.format(ns_port=ns_port)) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, root / "panel.ipynb")
    return "panel.ipynb"


def test_panels_render_act_refuse_and_stop(chromium, jupyter_server, free_tcp_port):
    ns_port = free_tcp_port
    name = _write_notebook(jupyter_server.root, ns_port)
    page = chromium.new_page(viewport={"width": 1280, "height": 1000})
    try:
        page.goto(jupyter_server.lab_url(name))
        page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=60_000)
        # wait for the kernel, then run every cell through JupyterLab's own command
        page.wait_for_function(KERNEL_READY, timeout=60_000)
        # (not awaited: the command's promise settles on JupyterLab's schedule, not ours)
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

        panel = page.locator(".pyrolab-Panel", has=page.locator(".pyrolab-Panel-title", has_text="lab.laser"))
        panel.wait_for(state="visible", timeout=60_000)
        assert "online" in panel.locator(".pyrolab-Panel-status").inner_text()  # the badge, as visible text
        on_box = panel.locator(".pyrolab-Panel-property-on input[type=checkbox]")
        assert not on_box.is_checked()

        lab = Lab(f"127.0.0.1:{ns_port}")
        laser = lab.connect("lab.laser")
        assert laser.on is False

        panel.locator(".pyrolab-Panel-call-turn_on").click()
        page.wait_for_function(
            "document.querySelector('.pyrolab-Panel-property-on input[type=checkbox]').checked",
            timeout=20_000)
        assert laser.on is True  # the click reached the daemon
        assert laser.emitted_power == 12.5
        # the derived, read-only value is text, and it followed the call
        emitted = panel.locator(".pyrolab-Panel-property-emitted_power .pyrolab-Panel-readout")
        emitted.filter(has_text="12.5").wait_for(timeout=20_000)

        # typing 80 into the 0..50 mW box: refused, said beside it, and nothing reaches the laser
        power_box = panel.locator(".pyrolab-Panel-property-power input").first
        power_box.fill("80")
        power_box.press("Enter")
        refusal = panel.locator(".pyrolab-Panel-property-power .pyrolab-Panel-note")
        refusal.filter(has_text="refused").wait_for(timeout=20_000)
        assert "above the maximum 50 mW" in refusal.inner_text()
        assert laser.power == 12.5

        page.mouse.move(0, 0)  # no hover highlight in the picture
        page.evaluate("() => document.querySelectorAll('.Toastify').forEach(t => t.remove())")  # JupyterLab's news
        SCREENSHOT.parent.mkdir(exist_ok=True)
        panel.screenshot(path=str(SCREENSHOT))
        assert SCREENSHOT.stat().st_size > 5_000

        # Stop stops a move made by another client
        stage_panel = page.locator(".pyrolab-Panel",
                                   has=page.locator(".pyrolab-Panel-title", has_text="lab.stage"))
        stage_panel.wait_for(state="visible", timeout=60_000)
        stage = lab.connect("lab.stage")
        stage.move_to(90.0, wait=False)
        moving = stage_panel.locator(".pyrolab-Panel-property-moving .pyrolab-Panel-readout")
        moving.filter(has_text="yes").wait_for(timeout=20_000)
        stage_panel.locator(".pyrolab-Panel-stop").click()
        moving.filter(has_text="no").wait_for(timeout=20_000)
        assert stage.moving is False and stage.position < 80.0  # stopped on the way
    except Exception:
        page.screenshot(path=str(jupyter_server.root / "failure.png"))  # beside jupyter.log, for the post-mortem
        raise
    finally:
        page.close()
