"""How a panel shows a call's result: text with its unit, a bqplot line or image, or the error.

Why bqplot and not ipympl: measured in this venv (``benchmarks/bench_panel.py``
repeats it), building a bqplot ``Figure`` with a 1000-point line or a 256x256
heat map costs about 2 ms, against 100-130 ms for an ipympl canvas (matplotlib
renders the figure in the kernel and ships PNGs), and importing bqplot takes
about half the time of importing matplotlib with the ipympl backend. bqplot
also updates in place by assigning the mark's data trait, which suits
repeated calls and live values; ipympl must redraw. bqplot is imported on the
first plot only, so panels without array results never pay for it.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
import numpy as np

from pyrolab_jupyter.jupyter.widget_mapping import format_value

__all__ = ["error_view", "plot_array", "result_view"]

_MAX_IMAGE_SIDE = 512  # a bigger image is decimated for display (the value itself is untouched)
_MAX_LINE_POINTS = 20_000


def _text(value: str, kind: str) -> widgets.Widget:
    if "\n" in value or len(value) > 120:
        shown = widgets.HTML(f"<pre style='margin:0;max-height:12em;overflow:auto'>{html.escape(value)}</pre>")
    else:
        shown = widgets.Label(value)
    shown.add_class("pyrolab-Panel-result")
    shown.add_class(f"pyrolab-Panel-result-{kind}")
    return shown


def error_view(kind: str, message: str) -> widgets.Widget:
    """An error as the panel shows it: the exception type, then the message (remote or local)."""
    shown = widgets.HTML(
        f"<span style='color:var(--jp-error-color1, #c62828)'><b>{html.escape(kind)}</b>: "
        f"{html.escape(message)}</span>"
    )
    shown.add_class("pyrolab-Panel-error")
    return shown


def _numeric(value: Any) -> np.ndarray | None:
    if isinstance(value, np.ndarray) and value.ndim in (1, 2) and value.size:
        if np.issubdtype(value.dtype, np.complexfloating):
            return np.abs(value)
        if np.issubdtype(value.dtype, np.number) or value.dtype == bool:
            return value.astype(float, copy=False)
    return None


def plot_array(data: np.ndarray, previous: widgets.Widget | None = None) -> widgets.Widget:
    """A bqplot figure of a 1-D (line) or 2-D (heat map) array; reuses ``previous`` when it fits."""
    import bqplot  # noqa: PLC0415 - imported on the first plot only (about 0.4 s)

    if data.ndim == 1:
        y = data[:: max(1, data.size // _MAX_LINE_POINTS)]
        x = np.arange(data.size)[:: max(1, data.size // _MAX_LINE_POINTS)]
        if isinstance(previous, bqplot.Figure) and isinstance(previous.marks[0], bqplot.Lines):
            with previous.marks[0].hold_sync():
                previous.marks[0].x, previous.marks[0].y = x, y
            return previous
        xs, ys = bqplot.LinearScale(), bqplot.LinearScale()
        mark = bqplot.Lines(x=x, y=y, scales={"x": xs, "y": ys})
        axes = [bqplot.Axis(scale=xs), bqplot.Axis(scale=ys, orientation="vertical")]
    else:
        step = max(1, -(-max(data.shape) // _MAX_IMAGE_SIDE))
        z = data[::step, ::step]
        if isinstance(previous, bqplot.Figure) and isinstance(previous.marks[0], bqplot.HeatMap):
            previous.marks[0].color = z
            return previous
        xs, ys = bqplot.LinearScale(), bqplot.LinearScale(reverse=True)
        mark = bqplot.HeatMap(color=z, scales={"x": xs, "y": ys, "color": bqplot.ColorScale(scheme="viridis")})
        axes = [bqplot.Axis(scale=xs), bqplot.Axis(scale=ys, orientation="vertical")]
    figure = bqplot.Figure(marks=[mark], axes=axes, fig_margin={"top": 10, "bottom": 30, "left": 50, "right": 10},
                           layout=widgets.Layout(width="420px", height="280px"))
    figure.add_class("pyrolab-Panel-plot")
    return figure


def result_view(value: Any, unit: str = "", previous: widgets.Widget | None = None) -> widgets.Widget:
    """What a call returned: a plot for 1-D/2-D numeric arrays, text with the unit otherwise."""
    data = _numeric(value)
    if data is not None:
        return plot_array(data, previous)
    if isinstance(value, np.ndarray):
        return _text(f"array{value.shape} {value.dtype}: {np.array2string(value, threshold=50)}", "array")
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return _text("done", "none")
    return _text(format_value(value, unit), "text")
