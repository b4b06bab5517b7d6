"""Every notebook in ``notebooks/`` runs from top to bottom in a real kernel, on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))

pytestmark = [
    pytest.mark.network,
    pytest.mark.timeout(240),
    # jupyter_client/zmq chatter while kernels start and stop is not ours to fix
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore:.*Proactor event loop.*:RuntimeWarning"),
]


def test_the_notebooks_are_there():
    names = {path.name for path in ALL}
    assert {"quickstart.ipynb", "lab_file.ipynb", "write_a_service.ipynb", "measurement.ipynb",
            "scpi_driver.ipynb", "safety_and_replay.ipynb", "bring_your_driver.ipynb"} <= names


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each notebook hosts its own lab: a running `pyrolab demo` must not be what it talks to.
    monkeypatch.delenv("PYROLAB_NAMESERVER", raising=False)
    notebook = nbformat.read(path, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        f"{path.name} is committed with outputs; clear them (Edit > Clear Outputs of All Cells)")
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},  # the kernel starts beside the notebook
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on the first error
    errors = [out for cell in notebook.cells for out in cell.get("outputs", []) if out.output_type == "error"]
    assert not errors
