"""The PyroLab sidebar in a real JupyterLab in headless Chromium, over real nameserver and daemon processes.

It lists running services (grouped, with lock holders), follows a daemon that
dies (offline, last seen), says so with ``role="alert"`` when the nameserver is
gone and recovers when it returns, filters, and its connect button puts a panel
in the notebook.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from pyrolab_jupyter import Lab

pytestmark = [
    pytest.mark.browser,
    pytest.mark.network,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "sidebar.png"
SIM = "pyrolab_jupyter.instruments.sim"
WAIT = 60_000  # ms: generous, the machine may be busy

KERNEL_READY = """() => {
    const kernel = window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel;
    return kernel?.connectionStatus === "connected" && kernel?.status === "idle";
}"""

CELL_SOURCES = """() => window.jupyterapp.shell.currentWidget.content.widgets.map(
    cell => cell.model.sharedModel.getSource())"""


def _write_notebook(root: Path, ns_address: str) -> str:
    # the kernel finds the test's nameserver as a user's would: through $PYROLAB_NAMESERVER
    cell = f"import os\nos.environ['PYROLAB_NAMESERVER'] = {ns_address!r}"
    nb = new_notebook(cells=[new_code_cell(cell)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, root / "sidebar.ipynb")
    return "sidebar.ipynb"


def _row(sidebar, name: str, status: str | None = None):
    selector = f'[data-service="{name}"]' + (f'[data-status="{status}"]' if status else "")
    return sidebar.locator(selector)


def test_sidebar_follows_the_lab_and_connects_the_notebook(chromium, jupyter_server, nameserver, daemon_factory):
    laser_daemon = daemon_factory({"lab.laser": f"{SIM}:Laser"}, nameserver=nameserver.uri, heartbeat=1.0)
    daemon_factory({"lab.stage": f"{SIM}:Stage", "bench2.meter": f"{SIM}:PowerMeter"},
                   nameserver=nameserver.uri, heartbeat=1.0)
    stage = Lab(nameserver.address).connect("lab.stage")
    lock = stage.lock(lease=300)
    name = _write_notebook(jupyter_server.root, nameserver.address)

    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(jupyter_server.lab_url(name))
        page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=WAIT)
        page.wait_for_function(KERNEL_READY, timeout=WAIT)
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

        # the sidebar has its own tab in the left area; open it like a user
        page.locator('.jp-SideBar [data-id="pyrolab-sidebar"]').click()
        sidebar = page.locator("#pyrolab-sidebar")
        sidebar.wait_for(state="visible", timeout=WAIT)
        assert sidebar.locator(".pyrolab-Sidebar-title").inner_text() == "PyroLab"

        # point the server extension at the test's nameserver from the sidebar (PUT /pyrolab/api/config)
        box = sidebar.locator(".pyrolab-Sidebar-nameserver")
        box.fill(nameserver.address)
        box.press("Enter")
        _row(sidebar, "lab.laser", "online").wait_for(timeout=WAIT)
        _row(sidebar, "bench2.meter", "online").wait_for(timeout=WAIT)
        groups = sidebar.locator(".pyrolab-Sidebar-group")
        assert [groups.nth(i).get_attribute("data-group") for i in range(groups.count())] == ["bench2", "lab"]
        assert lock.holder in _row(sidebar, "lab.stage").inner_text()  # who holds it
        described = Lab(nameserver.address).entry("lab.laser")["description"] or "lab.laser"
        assert _row(sidebar, "lab.laser").get_attribute("title") == described  # the description is the tooltip
        assert not sidebar.locator('[role="alert"]').is_visible()

        # the filter narrows the list; clearing it brings everything back
        sidebar.locator(".pyrolab-Sidebar-filter").fill("bench2")
        page.wait_for_function("document.querySelectorAll('#pyrolab-sidebar [data-service]').length === 1",
                               timeout=WAIT)
        sidebar.locator(".pyrolab-Sidebar-filter").fill("")
        page.wait_for_function("document.querySelectorAll('#pyrolab-sidebar [data-service]').length === 3",
                               timeout=WAIT)

        # kill -9 the laser's daemon: the nameserver's health check marks it offline, the sidebar follows
        laser_daemon.process.kill()
        laser_daemon.process.wait(10)
        offline = _row(sidebar, "lab.laser", "offline")
        offline.wait_for(timeout=WAIT)
        page.wait_for_function(
            """() => /last seen \\d+ s ago/.test(
                document.querySelector('#pyrolab-sidebar [data-service="lab.laser"]').textContent)""",
            timeout=WAIT)

        page.mouse.move(0, 0)  # no hover highlight or focus ring in the picture
        page.evaluate("() => document.activeElement?.blur()")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        box = sidebar.bounding_box()
        listed = sidebar.locator(".pyrolab-Sidebar-list").bounding_box()
        assert box is not None and listed is not None
        page.screenshot(path=str(SCREENSHOT), clip={"x": box["x"], "y": box["y"], "width": box["width"],
                                                    "height": listed["y"] + listed["height"] - box["y"] + 12})
        assert SCREENSHOT.stat().st_size > 5_000

        # the nameserver goes away: a clear alert; it comes back (daemons re-register): the alert goes
        nameserver.kill()
        alert = sidebar.locator('[role="alert"]')
        alert.wait_for(state="visible", timeout=WAIT)
        assert nameserver.address in alert.inner_text()
        nameserver.start()
        _row(sidebar, "lab.stage", "online").wait_for(timeout=WAIT)
        alert.wait_for(state="hidden", timeout=WAIT)

        # insert-connect: the notebook gets `%load_ext` (it had none) and `%pyrolab connect`, runs it,
        # and the stage's panel appears
        page.wait_for_function(KERNEL_READY, timeout=WAIT)
        _row(sidebar, "lab.stage").locator('button[data-action="connect"]').click()
        panel = page.locator(".pyrolab-Panel")
        panel.wait_for(state="visible", timeout=WAIT)
        assert "lab.stage" in panel.locator(".pyrolab-Panel-title").inner_text()
        sources = page.evaluate(CELL_SOURCES)
        assert "%load_ext pyrolab_jupyter\n%pyrolab connect lab.stage" in sources
        # now the notebook loads the extension: the next connect is the magic alone
        page.wait_for_function(KERNEL_READY, timeout=WAIT)
        _row(sidebar, "bench2.meter").locator('button[data-action="connect"]').click()
        page.wait_for_function(
            "() => document.querySelectorAll('.pyrolab-Panel').length === 2", timeout=WAIT)
        assert page.evaluate(CELL_SOURCES)[-1] == "%pyrolab connect bench2.meter"

        # the commands are in the palette
        labels = page.evaluate("""() => ['pyrolab:insert-connect', 'pyrolab:refresh', 'pyrolab:open-sidebar',
            'pyrolab:set-nameserver'].map(id => window.jupyterapp.commands.hasCommand(id))""")
        assert labels == [True, True, True, True]
    except Exception:
        page.screenshot(path=str(jupyter_server.root / "failure.png"))  # beside jupyter.log, for the post-mortem
        raise
    finally:
        page.close()
        lock.release()


@pytest.fixture
def configured_server(request, tmp_path, nameserver):
    """JupyterLab whose config names the nameserver and asks for the sidebar at start (as `pyrolab demo` does)."""
    config_dir = tmp_path / ".jupyter-config"  # the jupyter_server fixture's JUPYTER_CONFIG_DIR
    config_dir.mkdir(exist_ok=True)
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(
        {"PyroLabServer": {"nameserver": nameserver.address, "open_sidebar": True}}))
    return request.getfixturevalue("jupyter_server")


def test_open_sidebar_shows_it_at_start_with_the_configured_nameserver(chromium, configured_server, nameserver,
                                                                         daemon_factory):
    daemon_factory({"lab.laser": f"{SIM}:Laser"}, nameserver=nameserver.uri)
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{configured_server.url}/lab?token={configured_server.token}")
        sidebar = page.locator("#pyrolab-sidebar")
        sidebar.wait_for(state="visible", timeout=WAIT)  # nobody clicked its tab
        _row(sidebar, "lab.laser", "online").wait_for(timeout=WAIT)
        assert sidebar.locator(".pyrolab-Sidebar-nameserver").input_value() == nameserver.address
    except Exception:
        page.screenshot(path=str(configured_server.root / "failure.png"))
        raise
    finally:
        page.close()
