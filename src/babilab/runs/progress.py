"""Progress of a long evaluation, on a terminal or in a log file.

On a terminal a tqdm bar redraws itself in place. In a log (CI, nohup, a pipe) that bar would
print nothing useful, and a run of hours would look dead, so there `LogProgress` prints a
plain line every `LOG_INTERVAL_S` seconds instead:

    eval oracle: 120/500 samples (24%), 3.1 samples/s, 2m03s left

Weight loading gets the same treatment: transformers draws a bar per checkpoint while it
loads, useless in a log, so `quiet_weight_loading` turns those bars off there.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

LOG_INTERVAL_S = 30.0  # seconds between two lines in a log; tests set it to 0


def format_duration(seconds: float) -> str:
    """`1h02m`, `2m03s`, `45s`: short enough for a log line.

    >>> format_duration(3725), format_duration(123), format_duration(4.2)
    ('1h02m', '2m03s', '4s')
    """
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def format_rate(done: int, elapsed_s: float, unit: str) -> str:
    """Per second when fast, seconds per item when slow (a memory model's hour-long read).

    >>> format_rate(31, 10, "sample"), format_rate(2, 600, "sample")
    ('3.1 samples/s', '300.0 s/sample')
    """
    rate = done / elapsed_s if elapsed_s > 0 else float("inf")
    return f"{rate:.1f} {unit}s/s" if rate >= 1 else f"{1 / rate:.1f} s/{unit}"


class LogProgress:
    """A tqdm-like counter (`update`, `close`, a context manager) that prints plain lines."""

    def __init__(self, total: int, desc: str, unit: str = "sample",
                 interval_s: float | None = None, stream: TextIO | None = None):
        self.total, self.desc, self.unit = total, desc, unit
        self.interval_s = LOG_INTERVAL_S if interval_s is None else interval_s
        self.stream = stream or sys.stderr
        self.done = 0
        self.start = self.last = time.monotonic()

    def line(self, now: float) -> str:
        elapsed = now - self.start
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        head = f"{self.desc}: {self.done}/{self.total} {self.unit}s{share}"
        if self.done == 0:
            return head
        rate = format_rate(self.done, elapsed, self.unit)
        if self.done >= self.total:
            return f"{head}, {rate}, done in {format_duration(elapsed)}"
        left = (self.total - self.done) * elapsed / self.done
        return f"{head}, {rate}, {format_duration(left)} left"

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.interval_s and self.done < self.total:
            self.last = now
            print(self.line(now), file=self.stream, flush=True)

    def close(self) -> None:
        if self.done:  # the last line always: how long the whole thing took
            print(self.line(time.monotonic()), file=self.stream, flush=True)
            self.done = 0  # close twice, print once

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_kind(progress: bool | None) -> str:
    """`bar` (True, or None on a terminal), `lines` (None in a log) or `off` (False)."""
    if progress is None:
        return "bar" if sys.stderr.isatty() else "lines"
    return "bar" if progress else "off"


def progress_counter(total: int, desc: str, unit: str, progress: bool | None):
    """A tqdm bar, a `LogProgress`, or a silent tqdm, as `progress_kind` decides."""
    kind = progress_kind(progress)
    if kind == "lines":
        return LogProgress(total, desc, unit)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=kind == "off")


def quiet_weight_loading() -> None:
    """No per-checkpoint "Loading weights" bars from transformers (nor hub download bars).

    The environment switch works for a process that has not imported them yet; the calls
    for one that has. A user's own HF_HUB_DISABLE_PROGRESS_BARS wins.
    """
    if "HF_HUB_DISABLE_PROGRESS_BARS" in os.environ:
        return
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
