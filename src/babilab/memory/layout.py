"""How a request becomes segments: the one definition that training and evaluation share.

A request is a context and a question (a training sample adds the answer). A memory model
reads it as:

    segments 1..S-1   the context's tokens, `segment_size` per segment (the model's
                      alignment), each read with a memory write
    last segment      the context's last piece, then question_text(question) =
                      "\\nQuestion: <question>\\nAnswer:". Evaluation reads it without a
                      write and decodes greedily from there; training goes on with
                      " <answer>" + EOS, the only positions with a loss.

As in the reference, the question ends the last segment, next to the end of the
context: with one segment a memory model reads like its backbone, and the memory only has to
carry what lies in earlier segments. The question is never split: when the context's last
piece leaves no room for it (a context that fills its segments exactly), the piece is a
segment of its own and the question's segment holds the question alone. No special tokens
(BOS) are added.

Who builds segments from here:

* evaluation (models/memory.py): `question_text`, then `stream_segments`, which slices each
  step from the contexts' id arrays (a 10M-token context is never one tensor); `n_segments`
  and `last_segment_length` say how long a read is and whether its last segment fits.
* training (train/data.py): `question_text`; `context_length` sizes the context so that
  context, question and answer fill whole segments, and `MemoryModel.forward` cuts the sample
  with `segment_batches`. Those are `segment_plan`'s segments, the last one going on past the
  question with the answer; tests/memory/test_layout.py checks that both build the same ids.
  (Training samples fill whole segments, so `align` never moves their boundaries; evaluation
  with align="right" would cut the context's remainder first and differ. Every recipe uses
  the default, "left".)
* benchmarks: through the memory answerer, or `split_points` for a bare stream of tokens.

The generic pieces come first: `split_points` (where a sample is cut) and `segment_batches`
(several samples lined up to end on the same step, left padding inside a step).
Nothing here embeds tokens or runs a model.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..errors import BabilabError

IGNORE_INDEX = -100  # label value that is never scored (the HF / PyTorch convention)
ALIGNS = ("left", "right")
QUESTION_FORMAT = "\nQuestion: {question}\nAnswer:"
# Bump when QUESTION_FORMAT or the segment layout changes: the memory answerer's fingerprint
# holds it (as "prompt"), so stored answers of the old layout are not reused.
LAYOUT_VERSION = 2


# --------------------------------------------------------------------------------------------
# Segmenting samples


def split_points(length: int, segment_size: int, align: str = "left") -> list[tuple[int, int]]:
    """Segment boundaries of a sample of `length` tokens.

    `left` (the reference default) fills segments from the start and leaves the remainder
    last; `right` puts the remainder first. Every segment has at least one token.

    >>> split_points(10, 4)
    [(0, 4), (4, 8), (8, 10)]
    >>> split_points(10, 4, "right")
    [(0, 2), (2, 6), (6, 10)]
    """
    if length < 1:
        raise BabilabError("a sample needs at least one token")
    if align not in ALIGNS:
        raise BabilabError(f"align must be one of {ALIGNS}, got {align!r}")
    n_full, rest = divmod(length, segment_size)
    sizes = [segment_size] * n_full
    if rest:
        sizes = sizes + [rest] if align == "left" else [rest] + sizes
    ends = list(itertools.accumulate(sizes))
    return list(zip([0] + ends[:-1], ends, strict=True))


@dataclass(frozen=True)
class SegmentBatch:
    """One step of several samples: token ids left-padded to the step's widest segment.

    A row whose sample has not started yet (it has fewer segments than the longest one) is all
    padding: its `attention_mask` row is zero and the step leaves its state unchanged.
    `extras` carries per-token tensors cut the same way (targets, positions), padded with -100.
    """

    input_ids: Tensor  # (B, T) long, pad positions hold 0
    attention_mask: Tensor  # (B, T) long, 1 on real tokens
    extras: Mapping[str, Tensor] = dataclasses.field(default_factory=dict)  # name -> (B, T)

    @property
    def active(self) -> Tensor:
        """(B,) bool: the rows that have tokens in this step."""
        return self.attention_mask.bool().any(-1)

    def to(self, device: torch.device | str) -> SegmentBatch:
        return SegmentBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            {k: v.to(device) for k, v in self.extras.items()},
        )


def segment_batches(
    samples: Sequence[Tensor | Sequence[int]],
    segment_size: int,
    align: str = "left",
    extras: Mapping[str, Sequence[Tensor]] | None = None,
) -> Iterator[SegmentBatch]:
    """Cut each sample into segments and yield them step by step, all samples ending together.

    Each sample is segmented on its own (so batching never moves a segment boundary); a sample
    with fewer segments starts later. Inside a step, shorter segments are left-padded, so the
    last step ends on every sample's last token (the question) and decoding can continue there.
    Only token ids are sliced here: nothing is embedded, so a 10M-token sample costs its ids.

    >>> [b.input_ids.tolist() for b in segment_batches([[1, 2, 3, 4, 5], [6, 7]], 2)]
    [[[1, 2], [0, 0]], [[3, 4], [0, 0]], [[0, 5], [6, 7]]]
    """
    samples = [torch.as_tensor(s, dtype=torch.long) for s in samples]
    if not samples:
        raise BabilabError("no samples to segment")
    extras = dict(extras or {})
    for name, values in extras.items():
        if [len(v) for v in values] != [len(s) for s in samples]:
            raise BabilabError(f"extras[{name!r}] must have one tensor per sample, of equal length")
    points = [split_points(len(s), segment_size, align) for s in samples]
    n_steps = max(len(p) for p in points)
    for step in range(n_steps):
        pieces = []  # per sample: (start, end) or None before the sample starts
        for p in points:
            j = step - (n_steps - len(p))  # the sample's own segment index
            pieces.append(p[j] if j >= 0 else None)
        width = max(b - a for a, b in filter(None, pieces))
        ids = torch.zeros(len(samples), width, dtype=torch.long)  # (B, T)
        mask = torch.zeros(len(samples), width, dtype=torch.long)  # (B, T)
        cut = {k: torch.full((len(samples), width), IGNORE_INDEX, dtype=torch.long) for k in extras}
        for i, piece in enumerate(pieces):
            if piece is None:
                continue
            a, b = piece
            ids[i, width - (b - a):] = samples[i][a:b]
            mask[i, width - (b - a):] = 1
            for k, values in extras.items():
                cut[k][i, width - (b - a):] = values[i][a:b]
        yield SegmentBatch(ids, mask, cut)


# --------------------------------------------------------------------------------------------
# A request: the context's segments, then the question ending the last one


def question_text(question: str) -> str:
    """The text that ends the last segment (after it: the answer, or decoding).

    >>> question_text("Where is Mary?")
    '\\nQuestion: Where is Mary?\\nAnswer:'
    """
    return QUESTION_FORMAT.format(question=question.strip())


def segment_plan(n_context: int, n_question: int, segment_size: int,
                 align: str = "left") -> tuple[list[tuple[int, int]], bool]:
    """Where one request's context is cut, and whether its last piece shares the question's.

    Returns the boundaries of the context segments read before the last one, and `share`:
    True when the context's last piece and the question fit one segment together, so the
    last segment is that piece followed by the question; otherwise it is the question alone.

    >>> segment_plan(10, 2, 4)
    ([(0, 4), (4, 8)], True)
    >>> segment_plan(8, 2, 4)
    ([(0, 4), (4, 8)], False)
    """
    points = split_points(n_context, segment_size, align) if n_context else []
    share = bool(points) and points[-1][1] - points[-1][0] + n_question <= segment_size
    return (points[:-1] if share else points), share


def n_segments(n_context: int, n_question: int, segment_size: int, align: str = "left") -> int:
    """Segments `stream_segments` reads for one request, the last (with the question) included."""
    return len(segment_plan(n_context, n_question, segment_size, align)[0]) + 1


def last_segment_length(n_context: int, n_question: int, segment_size: int,
                        align: str = "left") -> int:
    """Tokens of the read-only last segment: the question, after the context's last piece when
    they share it."""
    points, share = segment_plan(n_context, n_question, segment_size, align)
    return n_question + (n_context - (points[-1][1] if points else 0) if share else 0)


def context_length(segments: int, segment_size: int, n_tail: int) -> int:
    """Context tokens of a training sample of `segments` whole segments whose last one ends
    with a tail of `n_tail` tokens (question, answer and EOS, and any further questions).

    Such a sample is cut into exactly `segment_plan`'s segments for its context and tail:

    >>> context_length(3, 4, 3)  # [c c c c] [c c c c] [c q a EOS]
    9
    >>> n_segments(9, 3, 4)
    3
    """
    return segments * segment_size - n_tail


def last_segment_start(segments: int, segment_size: int) -> int:
    """Tokens of a training sample of `segments` whole segments that come before its last one
    (a fact placed before this is only reachable through the memory).

    >>> last_segment_start(3, 4)
    8
    """
    return (segments - 1) * segment_size


def stream_segments(contexts: Sequence[Any], questions: Sequence[Sequence[int]], segment_size: int,
                    align: str = "left", pad_to: int = 1, start: int = 0) -> Iterator[SegmentBatch]:
    """Steps of SegmentBatch: every context's segments, then one step holding the questions.

    The question ends the last segment (`segment_plan`): the context's last piece shares the
    question's step when both fit one segment, and is a segment of its own otherwise (a
    context that fills its segments exactly). The question is never split. Like
    `segment_batches` (shorter contexts start later, left padding inside a step, all rows end
    together), but it slices one segment at a time from the id arrays instead of converting
    whole samples to tensors. `pad_to` rounds each step's width up to a multiple (never past
    the segment size): padding is masked, so answers keep their meaning, and few distinct
    shapes reach the backbone. `start` skips the first steps (a read resumed after them).

    >>> import numpy as np
    >>> steps = stream_segments([np.arange(1, 6), np.arange(6, 8)], [[9], [8, 8]], 2)
    >>> [s.input_ids.tolist() for s in steps]
    [[[1, 2], [0, 0]], [[3, 4], [6, 7]], [[5, 9], [8, 8]]]
    """
    plans = [segment_plan(len(c), len(q), segment_size, align)
             for c, q in zip(contexts, questions, strict=True)]
    points = [p for p, _ in plans]
    shares = [share for _, share in plans]
    n_steps = max(len(p) for p in points)

    def batch(rows: list[Any]) -> SegmentBatch:
        width = max(len(r) for r in rows if r is not None)
        width = max(width, min(-(-width // pad_to) * pad_to, segment_size))
        ids = torch.zeros(len(rows), width, dtype=torch.long)  # (B, T), left padded
        mask = torch.zeros(len(rows), width, dtype=torch.long)  # (B, T)
        for i, row in enumerate(rows):
            if row is not None and len(row):
                ids[i, width - len(row):] = torch.as_tensor(row, dtype=torch.long)
                mask[i, width - len(row):] = 1
        return SegmentBatch(ids, mask)

    for step in range(start, n_steps):
        rows = []
        for context, p in zip(contexts, points, strict=True):
            j = step - (n_steps - len(p))  # this sample's own segment index
            rows.append(context[p[j][0]:p[j][1]] if j >= 0 else None)
        yield batch(rows)
    yield batch([[*map(int, context[p[-1][1] if p else 0:]), *q] if share else list(q)
                 for context, p, q, share in zip(contexts, points, questions, shares, strict=True)])


__all__ = [
    "ALIGNS",
    "IGNORE_INDEX",
    "LAYOUT_VERSION",
    "QUESTION_FORMAT",
    "SegmentBatch",
    "context_length",
    "last_segment_length",
    "last_segment_start",
    "n_segments",
    "question_text",
    "segment_batches",
    "segment_plan",
    "split_points",
    "stream_segments",
]
