"""The report's answer to "where in the context does the model lose the facts".

From a model's summary["depth"] (runs/depth.py): the one-line comparison (supporting facts
in the first 25% vs the rest), accuracy by the first and the last supporting fact's depth
and by how the facts are laid out, and for `depth:D` suites the needle-in-a-haystack grid of
depth x length as a table and a heatmap. Every cell gives its sample count, since a depth
bin can hold few samples, and one with fewer than `min_samples` is marked (cells.py). Each
table is also written as CSV next to index.html.
"""

from __future__ import annotations

import csv
import html
from pathlib import Path

from ..runs.depth import ALL_LENGTHS, LAYOUTS, QUARTERS, early_vs_rest_line
from .cells import cell_td, grid_pngs
from .plots import heatmap_png, img_tag

FACT_GROUPS = (("by_first", "first supporting fact at", QUARTERS),
               ("by_last", "last supporting fact at", QUARTERS),
               ("layout", "layout: supporting facts", LAYOUTS))


def depth_section(depth: dict, model: str, stem: str, out: Path, min_samples: int) -> list[str]:
    """HTML parts for one model; writes STEM_fact_depth.csv, STEM_niah.csv and its PNG."""
    columns = [*depth["lengths"], ALL_LENGTHS]
    parts = [f"<h3>Where the facts are lost</h3><p><b>{html.escape(early_vs_rest_line(depth))}"
             "</b></p>"]
    rows = [(f"{title} {name}", depth[key].get(name, {})) for key, title, names in FACT_GROUPS
            for name in names if name in depth[key]]
    if rows:
        write_csv(out / f"{stem}_fact_depth.csv", "supporting facts", rows, columns)
        parts.append(table("supporting facts", rows, columns, min_samples))
    if depth["without_depths"]:
        parts.append(f"<p>{depth['without_depths']} predictions do not record where their "
                     "supporting facts lie (imported, or stored before babilab recorded it) "
                     "and are left out above.</p>")
    if depth.get("niah"):
        parts += niah_parts(depth["niah"], depth["lengths"], model, stem, out, min_samples)
    return parts


def niah_parts(niah: dict, lengths: list[str], model: str, stem: str, out: Path,
               min_samples: int) -> list[str]:
    """The depth x length grid of `depth:D` suites: a table with n per cell and a heatmap."""
    columns = [*lengths, ALL_LENGTHS]
    rows = [(f"{d}%", niah["cells"].get(d, {})) for d in niah["depths"]]
    write_csv(out / f"{stem}_niah.csv", "placement depth", rows, columns)
    cells = [[cells.get(n) for n in lengths] for _, cells in rows]
    png = heatmap_png(**grid_pngs(cells, min_samples), rows=[name for name, _ in rows],
                      cols=lengths, title=f"{model}: accuracy by depth",
                      xlabel="context length", ylabel="fact depth (depth:D)")
    (out / f"{stem}_niah.png").write_bytes(png)
    return ["<p>Needle in a haystack: suites built with placement depth:D (<code>babilab "
            "generate --depths</code>), accuracy by depth x length.</p>",
            table("placement depth", rows, columns, min_samples),
            img_tag(png, f"{model} depth x length grid")]


def table(corner: str, rows: list[tuple[str, dict]], columns: list[str], min_samples: int) -> str:
    head = "".join(f"<th>{html.escape(n)}</th>" for n in columns)
    body = "".join(f"<tr><th>{html.escape(name)}</th>"
                   f"{''.join(cell_td(cells.get(n), min_samples) for n in columns)}</tr>"
                   for name, cells in rows)
    return f"<table><tr><th>{html.escape(corner)}</th>{head}</tr>{body}</table>"


def write_csv(path: Path, corner: str, rows: list[tuple[str, dict]], columns: list[str]) -> None:
    """One row per (row, length) cell: accuracy and n, for plotting elsewhere."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([corner, "length", "accuracy", "n"])
        for name, cells in rows:
            for n in columns:
                if n in cells:
                    w.writerow([name, n, round(cells[n]["accuracy"], 1), cells[n]["n"]])
