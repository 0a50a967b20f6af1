"""Every figure lrtrack draws, with matplotlib (headless: the Agg backend).

The report's charts (`line_chart`, `heatmap`, `lr_range_chart`) are strings holding one
``<svg>`` element, ready to paste into an HTML page without any network asset. Each
plotted line carries an id (``<chart>-line-<i>``, matplotlib's ``gid``) so a browser
test can count the lines in the DOM. The PNG files logged to W&B are a run's curves
(`curves_figure`) and the range test's curve (`lr_range_png`).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Sequence

from lrtrack.formatting import format_value

#: One colour per configuration (matplotlib's tab10, then tab20 for bigger grids).
_STYLE = {
    "svg.fonttype": "none",  # text stays text: smaller files, selectable labels
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # bundled with matplotlib; the browser falls back to its own sans
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.hashsalt": "lrtrack",  # stable ids between runs: reports diff cleanly
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _svg(fig) -> str:
    """The figure as an ``<svg>`` element (no XML prolog, no fixed pixel size: it scales with the page)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    _pyplot().close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    # let CSS size the chart: drop the fixed width/height, keep the viewBox
    head, rest = text.split(">", 1)
    head = " ".join(part for part in head.split(" ") if not part.startswith(("width=", "height=")))
    return f'{head} class="chart-svg" preserveAspectRatio="xMidYMid meet">{rest}'


def _colors(n: int) -> list[Any]:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def line_chart(
    chart_id: str,
    series: Sequence[tuple[str, list[float], list[float | None]]],
    *,
    title: str,
    ylabel: str,
    percent: bool = False,
    log_y: bool | None = None,
    hline: tuple[float, str] | None = None,
) -> str:
    """One line per ``(label, epochs, values)``; non-finite values are left out (a diverged run's last epoch).

    ``log_y`` None picks a log scale when the positive values span more than two
    decades (a diverging loss would otherwise flatten every other line).
    ``hline`` draws a dashed reference line, e.g. chance accuracy.
    """
    plt = _pyplot()
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(6.4, 3.9))
        finite_all = []
        for i, (color, (label, epochs, values)) in enumerate(zip(_colors(len(series)), series)):
            points = [(e, v) for e, v in zip(epochs, values) if v is not None and math.isfinite(v)]
            finite_all += [v for _, v in points]
            xs = [e for e, _ in points]
            ys = [v * 100 if percent else v for _, v in points]
            (line,) = ax.plot(xs, ys, marker="o", markersize=4, linewidth=2, color=color, label=label)
            line.set_gid(f"{chart_id}-line-{i}")
            if len(points) < len(values):  # mark where the run stopped producing finite numbers
                ax.plot(xs[-1:], ys[-1:], marker="X", markersize=10, color=color, linestyle="none")
        if log_y is None:
            positive = [v for v in finite_all if v > 0]
            log_y = bool(positive) and max(positive) / min(positive) > 100
        if log_y:
            ax.set_yscale("log")
        if hline is not None:
            value, text = hline
            ax.axhline(value * 100 if percent else value, color="0.45", linestyle="--", linewidth=1)
            ax.annotate(text, xy=(1, value * 100 if percent else value), xycoords=("axes fraction", "data"),
                        ha="right", va="bottom", fontsize=8, color="0.35")
        all_epochs = sorted({e for _, epochs, _ in series for e in epochs})
        if all_epochs and len(all_epochs) <= 20:
            ax.set_xticks(all_epochs)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{ylabel} (%)" if percent else ylabel)
        ax.set_title(title, loc="left", fontweight="bold")
        if len(series) <= 3:
            ax.legend(frameon=False, fontsize=9, loc="best")
        else:  # many configurations: under the plot, never over the lines
            ax.legend(frameon=False, fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
        return _svg(fig)


def heatmap(
    chart_id: str,
    x_name: str,
    x_values: list[Any],
    y_name: str,
    y_values: list[Any],
    cells: dict[tuple[Any, Any], float],
    *,
    title: str,
    percent: bool = True,
) -> str:
    """A grid of the metric over two swept parameters; missing cells are left blank."""
    import numpy as np

    plt = _pyplot()
    grid = np.full((len(y_values), len(x_values)), np.nan)
    for (x, y), value in cells.items():
        grid[y_values.index(y), x_values.index(x)] = value * 100 if percent else value
    with plt.rc_context({**_STYLE, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(1.2 * len(x_values) + 2.6, 0.7 * len(y_values) + 1.8))
        image = ax.imshow(grid, cmap="viridis", aspect="auto")
        image.set_gid(f"{chart_id}-cells")
        ax.set_xticks(range(len(x_values)), [format_value(v) for v in x_values])
        ax.set_yticks(range(len(y_values)), [format_value(v) for v in y_values])
        ax.set_xlabel(x_name)
        ax.set_ylabel(y_name)
        finite = grid[np.isfinite(grid)]
        middle = (finite.min() + finite.max()) / 2 if finite.size else 0
        for (row, col), value in np.ndenumerate(grid):
            if math.isfinite(value):
                ax.text(col, row, f"{value:.1f}" if percent else f"{value:.3g}", ha="center", va="center",
                        color="white" if value < middle else "black", fontsize=9)
        fig.colorbar(image, ax=ax, label="%" if percent else "")
        ax.set_title(title, loc="left", fontweight="bold")
        return _svg(fig)



def _lr_range_figure(lrs: list[float], median: list[float], low: list[float], high: list[float],
                     marks: Sequence[tuple[str, float]], won: tuple[str, float] | None, title: str, chart_id: str):
    """The range test's figure: smoothed loss against lr (log axis), the seeds' band, suggestions as
    dashed verticals (gids ``<chart>-line-0`` for the curve, ``<chart>-mark-<i>`` for the marks)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.9))
    if any(lo != hi for lo, hi in zip(low, high)):
        band = ax.fill_between(lrs, low, high, color="C0", alpha=0.2, linewidth=0, label="seeds' range")
        band.set_gid(f"{chart_id}-band")
    (line,) = ax.plot(lrs, median, color="C0", linewidth=2, label="smoothed loss")
    line.set_gid(f"{chart_id}-line-0")
    for i, (label, lr) in enumerate(marks):
        mark = ax.axvline(lr, color=f"C{i + 1}", linestyle="--", linewidth=1.2, label=f"{label} {format_value(float(f'{lr:.3g}'))}")
        mark.set_gid(f"{chart_id}-mark-{i}")
    if won is not None:
        label, lr = won
        mark = ax.axvline(lr, color="black", linestyle="-", linewidth=1.5, label=f"{label} {format_value(lr)}")
        mark.set_gid(f"{chart_id}-won")
    ax.set_xscale("log")
    if median:  # from just under the lowest loss to somewhat above the start: a diverging tail is cut off
        lowest = min(low)
        span = max(median[0] - lowest, 0.1 * abs(median[0]))
        ax.set_ylim(lowest - 0.1 * span, max(median[0], lowest) + 0.6 * span)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("smoothed training loss")
    ax.set_title(title, loc="left", fontweight="bold")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    return fig


def lr_range_chart(chart_id: str, lrs: list[float], median: list[float], low: list[float], high: list[float],
                   marks: Sequence[tuple[str, float]], *, won: tuple[str, float] | None = None, title: str) -> str:
    """The learning-rate range test (`lrtrack.lr_find`) as an ``<svg>`` element."""
    with _pyplot().rc_context(_STYLE):
        return _svg(_lr_range_figure(lrs, median, low, high, marks, won, title, chart_id))


def lr_range_png(path, lrs: list[float], median: list[float], low: list[float], high: list[float],
                 marks: Sequence[tuple[str, float]], *, title: str):
    """The same figure as a PNG file (for W&B); returns ``path``."""
    plt = _pyplot()
    with plt.rc_context(_STYLE):
        fig = _lr_range_figure(lrs, median, low, high, marks, None, title, "lr-find")
        fig.savefig(path, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
    return path


def curves_figure(history: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Loss, accuracy and learning rate per epoch, train and validation, saved as PNG."""
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, metric in zip(axes[:2], ("loss", "acc")):
        for split in ("train", "val", "test"):
            key = f"{split}/{metric}"
            if key in history[0]:
                ax.plot(epochs, [row[key] for row in history], marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
        ax.grid(alpha=0.3)
    axes[2].plot(epochs, [row["lr"] for row in history], marker="o", color="tab:purple")
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("learning rate")
    axes[2].set_yscale("log")
    axes[2].grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
