"""The learning rate as a pure function of the step within a stage.

The reference (github.com/booydar/recurrent-memory-transformer) uses transformers' linear schedule,
re-warmed at every stage: warm-up over ITERS/10 steps, then a linear decay that would reach
zero at 2 x ITERS, so a stage ends at about half the peak. `decay_steps` keeps that choice
open (decay_frac 1.0 decays to zero at the stage's last step).
"""

from __future__ import annotations


def lr_at(step: int, peak: float, warmup_steps: int, decay_steps: int) -> float:
    """Learning rate for optimiser step `step` (0-based) of a stage.

    >>> [round(lr_at(s, 1.0, 4, 10), 3) for s in (0, 3, 4, 7, 10, 12)]
    [0.2, 0.8, 1.0, 0.5, 0.0, 0.0]
    """
    # 1) linear warm-up; (step + 1) so that the first step already moves (as nanoGPT)
    if step < warmup_steps:
        return peak * (step + 1) / (warmup_steps + 1)
    # 2) past the decay horizon: zero
    if step >= decay_steps:
        return 0.0
    # 3) in between, linear decay from the peak to zero at decay_steps
    return peak * (decay_steps - step) / max(1, decay_steps - warmup_steps)


__all__ = ["lr_at"]
