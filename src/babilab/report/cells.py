"""One cell of a report table or heatmap: accuracy, n, 95% interval, and the few-samples mark.

Every table cell reads `87.0 (n=30)` with its interval on hover (the `title` tooltip); a
heatmap cell reads `87` over `n=30`. A cell with fewer than `min_samples` samples is marked
the same way everywhere: an asterisk after it and italics in tables, hatching in heatmaps.
A qa1-qa5 average counts as few when any of its five tasks does (its `n_min`, from
`runs.results.average_cell`), since it is as shaky as its thinnest task.

    >>> cell = {"accuracy": 87.5, "n": 8, "ci_low": 52.9, "ci_high": 97.8}
    >>> cell_td(cell, 20)
    '<td class="few" title="95% CI 52.9-97.8%; n=8 (fewer than 20)">87.5<small> (n=8)</small>*</td>'
    >>> cell_png(cell, 20)
    '88*\\nn=8'
"""

from __future__ import annotations

import html

from ..scoring import effective_label

FEW_MARK = "*"


def is_few(cell: dict | None, min_samples: int) -> bool:
    """Fewer samples than `min_samples` (for an average: in its thinnest task)."""
    return cell is not None and cell.get("n_min", cell["n"]) < min_samples


def few_legend(min_samples: int) -> str:
    """The page's words for the mark."""
    if min_samples <= 0:
        return "No cell is marked for few samples (<code>--min-samples 0</code>)."
    return (f"A cell marked {FEW_MARK} (italic in tables, hatched in the figures) has fewer "
            f"than {min_samples} samples (<code>--min-samples</code>).")


def interval_text(cell: dict) -> str:
    return f"95% CI {cell['ci_low']:.1f}-{cell['ci_high']:.1f}%"


def cell_td(cell: dict | None, min_samples: int, text: str | None = None, note: str = "") -> str:
    """A table cell: `text` (default the accuracy to 0.1) and n; the interval in the tooltip."""
    if cell is None:
        return "<td></td>"
    text = f"{cell['accuracy']:.1f}" if text is None else text
    title = f"{note}{interval_text(cell)}; n={cell['n']}"
    if not is_few(cell, min_samples):
        return f'<td title="{html.escape(title)}">{text}<small> (n={cell["n"]})</small></td>'
    under = (f" (fewer than {min_samples})" if "n_min" not in cell else
             f" ({cell['n_min']} in its thinnest task: fewer than {min_samples})")
    return (f'<td class="few" title="{html.escape(title + under)}">{text}'
            f'<small> (n={cell["n"]})</small>{FEW_MARK}</td>')


def cell_png(cell: dict | None, min_samples: int, text: str | None = None) -> str:
    """A heatmap cell's label: the accuracy (default whole percent), the mark, then n."""
    if cell is None:
        return ""
    text = f"{cell['accuracy']:.0f}" if text is None else text
    return f"{text}{FEW_MARK if is_few(cell, min_samples) else ''}\nn={cell['n']}"


def grid_pngs(cells: list[list[dict | None]], min_samples: int,
              texts: list[list[str | None]] | None = None) -> dict:
    """heatmap_png's values, labels and marks for a grid of cells (None: no cell)."""
    return {"values": [[None if c is None else c["accuracy"] for c in row] for row in cells],
            "labels": [[cell_png(c, min_samples, texts[i][j] if texts else None)
                        for j, c in enumerate(row)] for i, row in enumerate(cells)],
            "marked": [[is_few(c, min_samples) for c in row] for row in cells]}


def effective_td(effective: dict | None) -> str:
    """One effective context length (runs.results), its threshold in the tooltip; blank when
    nothing was measured."""
    if effective is None or effective["threshold"] is None:
        return "<td></td>"
    title = f"needs {effective['threshold']:.1f}% at every length up to it"
    return f'<td title="{html.escape(title)}">{html.escape(effective_label(effective))}</td>'


def safe_name(name: str) -> str:
    """A model or task name as part of a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
