"""The figures: task x length heatmap, depth x length heatmaps, accuracy by depth quartile.

All functions take plain numbers (from runs/results.py) and return PNG bytes; they know
nothing about how predictions were made. Colours follow BABILong's figures: red (0%) to
green (100%), each cell annotated with its accuracy.
"""

from __future__ import annotations

import base64
import html
import io
import math

DEPTH_BINS = 10  # depth x length heatmap rows: 0-10%, ..., 90-100%


def img_tag(png: bytes, alt: str) -> str:
    """A PNG inlined in the page, so index.html stands alone."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def heatmap_png(values: list[list[float | None]], rows: list[str], cols: list[str], title: str,
                xlabel: str, ylabel: str, labels: list[list[str]] | None = None,
                marked: list[list[bool]] | None = None) -> bytes:
    """A red-to-green heatmap of percentages; None cells are grey and unlabelled. `labels`
    replaces a cell's printed accuracy (e.g. to add its sample count); `marked` cells are
    hatched (the report marks cells with few samples so)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    data = np.array([[math.nan if v is None else v for v in row] for row in values], dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * max(len(cols), 2), 0.9 + 0.45 * max(len(rows), 2)))
    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="#dddddd")
    ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not math.isnan(data[i, j]):
                text = labels[i][j] if labels else f"{data[i, j]:.0f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8)
            if marked and marked[i][j]:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                                       edgecolor="#8c8c8c", linewidth=0))
    return _figure_png(fig)


def depth_bin(depth: float) -> int:
    return min(DEPTH_BINS - 1, max(0, int(depth // (100 / DEPTH_BINS))))


def depth_rows() -> list[str]:
    step = 100 // DEPTH_BINS
    return [f"{i * step}-{(i + 1) * step}%" for i in range(DEPTH_BINS)]


def lines_png(series: dict[str, list[float | None]], xs: list[str], title: str, xlabel: str,
              ylabel: str = "accuracy, %") -> bytes:
    """One line per series over categorical x values (None points are skipped)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for name, ys in series.items():
        points = [(i, y) for i, y in enumerate(ys) if y is not None]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    ax.set_xticks(range(len(xs)), xs)
    ax.set_ylim(0, 100)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return _figure_png(fig)
