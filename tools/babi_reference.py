"""Refresh the measured numbers in tests/babi/reference/*.json from released bAbI files.

The reference files hold what generated data must match (tests/babi/test_reference_stats.py).
Some of their numbers are derived from each task's definition (template shares as products
of the statement mix, qa3's uniform answers). The ones this tool writes are measured on the
released bAbI v1.2 train files (Weston et al. 2015, arXiv 1502.05698; en-10k, and for qa3
the en 1k file): the recency table, questions per story and supporting ids per question,
each as percentages.

    python tools/babi_reference.py DIR    # DIR holds the released qaN_*_train.txt files

Rewrites only those three keys (and notes them once in "source"); everything else stays.
"""

import argparse
import json
from pathlib import Path

from babilab.babi import compute_stats, read_file
from babilab.babi.fileformat import file_name
from babilab.babi.vocab import TASK_NAMES

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "babi" / "reference"
MEASURED = ("recency", "questions_per_story", "support_counts")
NOTE = ("Measured on the released v1.2 train file (tools/babi_reference.py): "
        + ", ".join(MEASURED) + ".")


def percentages(counts: dict) -> dict[str, float]:
    total = sum(counts.values()) or 1
    return {str(k): round(100 * v / total, 2) for k, v in counts.items()}


def measured(train_file: Path, task: str) -> dict:
    stats = compute_stats(read_file(train_file))[task].as_dict()
    return {"recency": stats["recency"],
            "questions_per_story": percentages(stats["questions_per_story"]),
            "support_counts": percentages(stats["support_counts"])}


def write_reference(path: Path, data: dict) -> None:
    """One key per line, as the reference files are written by hand."""
    lines = [f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}" for key, value in data.items()]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("released", type=Path, help="folder with the released qaN_*_train.txt")
    args = parser.parse_args()
    for task in TASK_NAMES:
        path = REFERENCE / f"{task}.json"
        data = json.loads(path.read_text())
        if NOTE not in data["source"]:
            data["source"] = f"{data['source'].rstrip('.')}. {NOTE}"
        data.update(measured(args.released / file_name(task, "train"), task))
        write_reference(path, data)
        print(f"{task}: recency {data['recency']}")


if __name__ == "__main__":
    main()
