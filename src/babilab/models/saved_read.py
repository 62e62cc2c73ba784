"""A memory read in progress, on disk: what lets a long read stop and continue.

A read of millions of tokens takes hours; `SavedRead` keeps the memory state after the
segments read so far, so Ctrl-C, SIGTERM, an error, a crash or a kill -9 loses at most the
last `every_s` seconds. The memory answerer (memory.py) uses it for every read when it has a
`resume_dir`; benchmarks use it for their long reads.

The state is saved with `torch.save` of plain tensors (`state_fields`) and loaded with
`weights_only=True`, under a key the caller makes from everything the read depends on.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from ..errors import BabilabError
from ..outputs import write_atomic


class SavedRead:
    """A read in progress on disk: the memory state after the first `read` segments.

    `update` saves it at most every `every_s` seconds (atomically: a crash leaves the previous
    save whole) and remembers the latest state, which `save_latest` writes when the read is
    interrupted (so Ctrl-C loses nothing; only a kill -9 loses up to `every_s`). `load` returns
    (segments read, state) to continue from, `clear` removes the file once the answer is made.
    The file name is the read's key: the answerer fingerprint and the token ids, so a save is
    only ever used for the same model and the same inputs.
    """

    def __init__(self, directory: Path, key: str, every_s: float):
        self.path = Path(directory) / f"memory-read-{key[:32]}.pt"
        self.key, self.every_s = key, every_s
        self.last_save = time.monotonic()
        self.saved_read = 0  # segments covered by the file on disk
        self.latest: tuple[int, Any] | None = None  # (segments read, state) at the last update

    def load(self, model: Any) -> tuple[int, Any]:
        import torch

        if not self.path.is_file():
            return 0, None
        try:
            saved = torch.load(self.path, weights_only=True)
            if saved.get("key") != self.key:
                raise ValueError("the key does not match")
            read, state = int(saved["read"]), model.state_from(saved["state"])
        except (OSError, RuntimeError, ValueError, KeyError, BabilabError) as e:
            print(f"warning: ignoring the saved read {self.path} ({e}); reading from the start",
                  file=sys.stderr)
            return 0, None
        self.last_save, self.saved_read = time.monotonic(), read
        print(f"continuing a saved read after segment {read} ({self.path})", file=sys.stderr)
        return read, state

    def update(self, model: Any, read: int) -> None:
        # states are replaced, not changed, by later segments (RMT-R only appends past the
        # stored length), so holding this one keeps it as it was after `read` segments
        self.latest = (read, model.state)
        if time.monotonic() - self.last_save >= self.every_s:
            self.save(read, model.state)

    def save_latest(self) -> None:
        if self.latest is not None and self.latest[0] > self.saved_read:
            self.save(*self.latest)
            print(f"saved the read after segment {self.saved_read} ({self.path}); the same "
                  "command continues from there", file=sys.stderr)

    def save(self, read: int, state: Any) -> None:
        import torch

        from ..memory.common import state_fields

        self.path.parent.mkdir(parents=True, exist_ok=True)
        saved = {"key": self.key, "read": read, "state": state_fields(state)}
        write_atomic(self.path, lambda tmp: torch.save(saved, tmp))
        self.last_save, self.saved_read = time.monotonic(), read

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


__all__ = ["SavedRead"]
