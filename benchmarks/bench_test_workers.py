"""The test suite in one pytest process against two pytest-xdist workers (what `make test` runs).

    python benchmarks/bench_test_workers.py --out benchmarks/results/bench_test_workers.txt

Runs `pytest -q` and `pytest -q -n 2` one after the other in this checkout (the caches warm
from an earlier run, as on a developer's machine; the first run warms them if not), and
prints each one's wall time, its pass/skip counts and the ratio. Both must pass.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_text, machine_line  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run_pytest(workers: int) -> tuple[float, str]:
    """Wall seconds of the whole suite and pytest's closing line."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers)]
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0:
        raise SystemExit(f"pytest -n {workers} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return seconds, re.sub(r" in [0-9.]+s.*", "", last)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the report to this file")
    args = parser.parse_args()
    lines = ["# bench_test_workers: the whole suite, pytest -q against pytest -q -n 2",
             f"{machine_line()}; {load_text()} at the start"]
    print("\n".join(lines), flush=True)
    one, counts_one = run_pytest(0)
    two, counts_two = run_pytest(2)
    lines += [f"one process   {one:7.1f} s   {counts_one}",
              f"two workers   {two:7.1f} s   {counts_two}",
              f"ratio         {one / two:7.2f}x   ({load_text()} at the end)"]
    print("\n".join(lines[2:]), flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
