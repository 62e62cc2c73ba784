"""Recurrent-memory models around any HF causal LM: RMT, RMT-R and ARMT.

One file per architecture (rmt.py, rmt_r.py, armt.py), what they share in common.py, greedy
decoding in generate.py, how a request becomes segments in layout.py (training and evaluation
both use it), saved folders in saving.py. Reference: the public code,
github.com/booydar/recurrent-memory-transformer and
github.com/RodkinIvan/associative-recurrent-memory-transformer.

    backbone = AutoModelForCausalLM.from_pretrained(...)
    model = RMT(backbone, RMTConfig(segment_size=512, num_mem_tokens=16))
    out = model(input_ids, attention_mask, labels)        # training: loss at answer positions
    gen = model.generate(model.segments(samples), max_new_tokens=10)   # streaming inference
"""

from .armt import ARMT, ARMTConfig, ARMTState
from .common import MemoryModel, MemoryOutput
from .generate import Generation, generate
from .layout import SegmentBatch, segment_batches, split_points
from .rmt import RMT, RMTConfig, RMTState
from .rmt_r import RMTR, RMTRConfig, RMTRState
from .saving import ARCHITECTURES, load_memory_model, memory_class

__all__ = [
    "ARCHITECTURES",
    "ARMT",
    "ARMTConfig",
    "ARMTState",
    "Generation",
    "MemoryModel",
    "MemoryOutput",
    "RMT",
    "RMTConfig",
    "RMTR",
    "RMTRConfig",
    "RMTRState",
    "RMTState",
    "SegmentBatch",
    "generate",
    "load_memory_model",
    "memory_class",
    "segment_batches",
    "split_points",
]
