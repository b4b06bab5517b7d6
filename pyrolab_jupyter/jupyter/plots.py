"""How a panel shows a call's result: text with its unit, a bqplot line or image, or the error.

Why bqplot and not ipympl: measured in this venv (``benchmarks/bench_panel.py``
repeats it), building a bqplot ``Figure`` with a 1000-point line or a 256x256
heat map costs about 2 ms, against 100-130 ms for an ipympl canvas (matplotlib
renders the figure in the kernel and ships PNGs), and importing bqplot takes
about half the time of importing matplotlib with the ipympl backend. bqplot
also updates in place by assigning the mark's data trait, which suits
repeated calls and live mode; ipympl must redraw. bqplot is imported on the
first plot only, so panels without array results never pay for it.

Every plot says what it shows: axis labels with units (the result's
``x-unit``; a time axis in seconds when the service offers one), and images
carry a colour bar. An image goes to the browser as a viridis PNG in a bqplot
``Image`` mark (encoded here with zlib, about 1 byte a pixel, instead of 8
bytes a pixel of numbers for a heat map), so a camera in live mode stays light.
"""

from __future__ import annotations

import html
import struct
import zlib
from typing import Any

import ipywidgets as widgets
import numpy as np

from pyrolab_jupyter.jupyter.controls import format_value

__all__ = ["error_html", "error_view", "numeric", "plot_array", "plot_image", "plot_line", "png", "result_view"]

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


def error_html(kind: str, message: str) -> str:
    """An error as the panel writes it: the exception type in bold, then the message; no type for a refusal."""
    head = f"<b>{html.escape(kind)}</b>: " if kind else ""
    return (f"<span style='color:var(--jp-error-color1, #c62828);display:inline-block;line-height:1.3'>"
            f"{head}{html.escape(message)}</span>")


def error_view(kind: str, message: str) -> widgets.Widget:
    """An error as a widget (a call's result)."""
    shown = widgets.HTML(error_html(kind, message))
    shown.add_class("pyrolab-Panel-error")
    return shown


def numeric(value: Any) -> np.ndarray | None:
    """``value`` as a float array when it is a plottable 1-D or 2-D numeric array, else None."""
    if isinstance(value, np.ndarray) and value.ndim in (1, 2) and value.size:
        if np.issubdtype(value.dtype, np.complexfloating):
            return np.abs(value)
        if np.issubdtype(value.dtype, np.number) or value.dtype == bool:
            return value.astype(float, copy=False)
    return None


_MARGIN = {"top": 10, "bottom": 40, "left": 60, "right": 10}
_IMAGE_MARGIN = {"top": 10, "bottom": 40, "left": 50, "right": 80}  # room for the colour bar


def _label(name: str, unit: str) -> str:
    return f"{name} ({unit})" if unit else name


def _figure(marks: list[Any], axes: list[Any], margin: dict[str, int], width: str = "440px",
            height: str = "300px") -> widgets.Widget:
    import bqplot  # noqa: PLC0415 - imported on the first plot only (about 0.4 s)

    figure = bqplot.Figure(marks=marks, axes=axes, fig_margin=margin, layout=widgets.Layout(width=width, height=height))
    figure.add_class("pyrolab-Panel-plot")
    return figure


def plot_line(y: np.ndarray, unit: str = "", x: np.ndarray | None = None, x_unit: str = "",
              previous: widgets.Widget | None = None) -> widgets.Widget:
    """A 1-D array as a line, labelled with its unit; against ``x`` (a time axis) when given, else the sample index."""
    import bqplot  # noqa: PLC0415

    step = max(1, y.size // _MAX_LINE_POINTS)
    xs_data = np.arange(y.size) if x is None or x.shape != y.shape else np.asarray(x, dtype=float)
    x_label = ("time" if x_unit == "s" else "x") if x is not None and x.shape == y.shape else "sample"
    x_label = _label(x_label, x_unit if x_label != "sample" else "")
    if isinstance(previous, bqplot.Figure) and isinstance(previous.marks[0], bqplot.Lines):
        with previous.marks[0].hold_sync():
            previous.marks[0].x, previous.marks[0].y = xs_data[::step], y[::step]
        if previous.axes[0].label != x_label:
            previous.axes[0].label = x_label
        return previous
    xs, ys = bqplot.LinearScale(), bqplot.LinearScale()
    mark = bqplot.Lines(x=xs_data[::step], y=y[::step], scales={"x": xs, "y": ys})
    # a time axis in seconds ticks with SI prefixes (500µ, 1m), so small times stay readable
    axes = [bqplot.Axis(scale=xs, label=x_label, tick_format="~s" if x_unit == "s" else None, num_ticks=6),
            bqplot.Axis(scale=ys, orientation="vertical", label=_label("value", unit), label_offset="45px")]
    return _figure([mark], axes, _MARGIN)


# matplotlib's viridis at nine points; the colour bar's d3 "viridis" scheme is the same ramp
_VIRIDIS = np.array([[0x44, 0x01, 0x54], [0x47, 0x2C, 0x7A], [0x3B, 0x51, 0x8B], [0x2C, 0x71, 0x8E],
                     [0x21, 0x90, 0x8D], [0x27, 0xAD, 0x81], [0x5C, 0xC8, 0x63], [0xAA, 0xDC, 0x32],
                     [0xFD, 0xE7, 0x25]], dtype=float)
_LUT = np.stack([np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_VIRIDIS)), _VIRIDIS[:, c])
                 for c in range(3)], axis=1).astype(np.uint8)


def png(z: np.ndarray, low: float, high: float) -> bytes:
    """A 2-D array as an 8-bit RGB PNG in viridis (``low`` dark, ``high`` bright): a few dozen kB per frame."""
    index = np.nan_to_num((z - low) / (high - low) * 255, nan=0.0).clip(0, 255).astype(np.uint8)
    rgb = _LUT[index]
    height, width = z.shape
    raw = np.zeros((height, width * 3 + 1), dtype=np.uint8)  # each row: filter byte 0, then RGB
    raw[:, 1:] = rgb.reshape(height, width * 3)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw.tobytes(), 1))
            + chunk(b"IEND", b""))


def _range(z: np.ndarray) -> tuple[float, float]:
    finite = z[np.isfinite(z)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return (low, high) if high > low else (low, low + 1.0)


def plot_image(data: np.ndarray, unit: str = "", previous: widgets.Widget | None = None) -> widgets.Widget:
    """A 2-D array as an image (a PNG in a bqplot ``Image`` mark, row 0 at the top) with a colour bar.

    The colour bar carries the unit and the frame's own range; the picture
    goes to the browser as a PNG, not as numbers, so live mode stays light.
    """
    import bqplot  # noqa: PLC0415

    step = max(1, -(-max(data.shape) // _MAX_IMAGE_SIDE))
    z = data[::step, ::step]
    low, high = _range(z)
    picture, extent = png(z, low, high), {"x": (0, data.shape[1]), "y": (data.shape[0], 0)}
    if isinstance(previous, bqplot.Figure) and isinstance(previous.marks[0], bqplot.Image):
        mark, colours = previous.marks[0], previous.axes[2].scale
        with colours.hold_sync():
            colours.min, colours.max = low, high
        with mark.hold_sync():
            mark.x, mark.y = extent["x"], extent["y"]
        mark.image.value = picture
        return previous
    xs, ys = bqplot.LinearScale(), bqplot.LinearScale(reverse=True)
    colours = bqplot.ColorScale(scheme="viridis", min=low, max=high)
    mark = bqplot.Image(image=widgets.Image(value=picture, format="png"), scales={"x": xs, "y": ys}, **extent)
    axes = [bqplot.Axis(scale=xs, label="x (px)"),
            bqplot.Axis(scale=ys, orientation="vertical", label="y (px)", label_offset="35px"),
            bqplot.ColorAxis(scale=colours, orientation="vertical", side="right", label=unit or "value")]
    # tall enough for bqplot's colour bar, which is the plot's height less 200 px
    return _figure([mark], axes, _IMAGE_MARGIN, width="520px", height="440px")


def plot_array(data: np.ndarray, previous: widgets.Widget | None = None, unit: str = "",
               x: np.ndarray | None = None, x_unit: str = "") -> widgets.Widget:
    """A bqplot figure of a 1-D (line) or 2-D (image) array; reuses ``previous`` when it fits."""
    if data.ndim == 1:
        return plot_line(data, unit, x, x_unit, previous)
    return plot_image(data, unit, previous)


def result_view(value: Any, unit: str = "", previous: widgets.Widget | None = None,
                x: np.ndarray | None = None, x_unit: str = "") -> widgets.Widget:
    """What a call returned: a plot for 1-D/2-D numeric arrays (``x``: a time axis), text with the unit otherwise."""
    data = numeric(value)
    if data is not None:
        return plot_array(data, previous, unit, x, x_unit)
    if isinstance(value, np.ndarray):
        return _text(f"array{value.shape} {value.dtype}: {np.array2string(value, threshold=50)}", "array")
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return _text("done", "none")
    return _text(format_value(value, unit), "text")
