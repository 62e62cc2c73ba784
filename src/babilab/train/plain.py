"""The plain backbone as a trainee: the seeds' fine-tuned-LLM baseline, with no memory.

A whole sample (prompt, answer, EOS) goes through the backbone in one pass, with full
attention within its window; like the memory models, the LM head runs only at the labelled
positions, and `forward` returns the same `MemoryOutput`, so the
training loop treats both alike. The trained backbone is saved as a transformers folder and
evaluated with `babilab eval --model hf:FOLDER` (data.py's plain layout is what that sends).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel

from ..errors import BabilabError
from ..memory.common import IGNORE_INDEX, MemoryOutput, check_causal_lm, max_positions


class PlainLM(nn.Module):
    """A HF causal LM trained on answers only; `backbone` is the model itself."""

    architecture: ClassVar[str] = "plain"

    def __init__(self, backbone: PreTrainedModel):
        super().__init__()
        check_causal_lm(backbone)
        self.backbone = backbone

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    @property
    def window(self) -> int | None:
        return max_positions(self.backbone)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, labels: Tensor) -> MemoryOutput:
        """input_ids, attention_mask, labels: (B, L), right-padded; labels as in HF (-100 off)."""
        L = input_ids.shape[1]
        if self.window is not None and L > self.window:
            raise BabilabError(f"a sample of {L} tokens does not fit the backbone's window "
                               f"({self.window}); use fewer segments or a smaller segment_size")
        body = self.backbone.base_model(input_ids=input_ids, attention_mask=attention_mask,
                                        use_cache=False)
        hidden = body.last_hidden_state[:, :-1]  # (B, L-1, D): position t predicts t + 1
        targets = labels[:, 1:]  # (B, L-1)
        keep = targets != IGNORE_INDEX
        if not bool(keep.any()):
            raise BabilabError("labels mark no position to score (all -100 after the shift)")
        picked = hidden[keep]  # (N, D)
        logits = self.backbone.get_output_embeddings()(picked).float()  # (N, V)
        cap = getattr(self.backbone.config, "final_logit_softcapping", None)  # Gemma 2/3
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return MemoryOutput(F.cross_entropy(logits, targets[keep]), logits, picked, None)


__all__ = ["PlainLM"]
