"""Where the hf answerer runs: the device choice as a pure function of the machine (tested
here without a GPU), and the CUDA path on a real model wherever CUDA exists."""

import subprocess
import sys

import pytest
import torch

from babilab.errors import BabilabError
from babilab.hardware import Accelerators, DevicePlan, plan_device
from babilab.models import Request, load_answerer
from babilab.models.hf import gpu_batch_tokens, kv_cache_bytes_per_token
from babilab.prompts import PromptConfig

NO_GPU = Accelerators()
H100 = Accelerators(cuda_count=1, cuda_bf16=True)
FOUR_H100 = Accelerators(cuda_count=4, cuda_bf16=True)
V100S = Accelerators(cuda_count=2, cuda_bf16=False)  # no native bfloat16


@pytest.mark.parametrize(("device", "have", "local_rank", "expected"), [
    # the CPU path: float32 where bfloat16 is emulated, transformers' own attention default
    ("auto", NO_GPU, 0, DevicePlan("cpu", "float32", None)),
    ("cpu", FOUR_H100, 0, DevicePlan("cpu", "float32", None)),
    ("auto", Accelerators(cpu_bf16=True), 0, DevicePlan("cpu", "bfloat16", None)),
    # a GPU: bfloat16 where it is native, SDPA, flash attention when installed
    ("auto", H100, 0, DevicePlan("cuda:0", "bfloat16", "sdpa")),
    ("auto", V100S, 0, DevicePlan("cuda:0", "float32", "sdpa")),
    ("auto", Accelerators(cuda_count=1, cuda_bf16=True, flash_attn=True), 0,
     DevicePlan("cuda:0", "bfloat16", "flash_attention_2")),
    ("auto", Accelerators(cuda_count=1, flash_attn=True), 0,  # flash attention has no float32
     DevicePlan("cuda:0", "float32", "sdpa")),
    # under a launcher each process takes its own GPU, unless told which
    ("auto", FOUR_H100, 3, DevicePlan("cuda:3", "bfloat16", "sdpa")),
    ("cuda", FOUR_H100, 2, DevicePlan("cuda:2", "bfloat16", "sdpa")),
    ("cuda:1", FOUR_H100, 3, DevicePlan("cuda:1", "bfloat16", "sdpa")),
    ("CUDA:1", FOUR_H100, 0, DevicePlan("cuda:1", "bfloat16", "sdpa")),
    # accelerate launch --cpu asks for the CPU even where there are GPUs
    ("auto", Accelerators(cuda_count=1, cuda_bf16=True, force_cpu=True), 0,
     DevicePlan("cpu", "float32", None)),
])
def test_device_choice(device, have, local_rank, expected):
    assert plan_device(device, have=have, local_rank=local_rank) == expected


def test_explicit_dtype_attention_and_device_map_are_kept():
    plan = plan_device("auto", "float16", "eager", have=H100)
    assert (plan.dtype, plan.attn_implementation) == ("float16", "eager")
    plan = plan_device("cuda", device_map="auto", have=FOUR_H100)
    assert (plan.device, plan.device_map) == ("cuda:0", "auto")
    assert plan_device("cpu", attn="sdpa", have=NO_GPU).attn_implementation == "sdpa"


@pytest.mark.parametrize(("kwargs", "have", "message"), [
    ({"device": "gpu"}, H100, "device must be auto, cpu, cuda or cuda:N .*got 'gpu'"),
    ({"device": "cuda:x"}, H100, "device must be auto, cpu, cuda or cuda:N"),
    ({"device": "cpu:0"}, H100, "device must be auto, cpu, cuda or cuda:N"),
    ({"device": "cuda"}, NO_GPU, "torch sees no GPU"),
    ({"device": "cuda:2"}, V100S, r"cuda:2 does not exist: 2 GPUs visible \(cuda:0 to cuda:1\)"),
    ({"device": "auto", "local_rank": 2}, V100S, "LOCAL_RANK=2 has no GPU of its own"),
    ({"device_map": "auto"}, NO_GPU, "spreads a model over GPUs; this process runs on the CPU"),
    ({"device_map": "auto", "world_size": 2}, FOUR_H100, "with 2 processes give each its own"),
    ({"device_map": "everywhere"}, FOUR_H100, "device_map must be one of auto"),
    ({"dtype": "fp8"}, H100, "dtype must be one of"),
    ({"attn": "flash"}, H100, "attn_implementation must be one of"),
    ({"attn": "flash_attention_2"}, H100, "needs a GPU and the flash-attn package"),
    ({"attn": "flash_attention_2", "dtype": "float32"},
     Accelerators(cuda_count=1, flash_attn=True), "not float32"),
])
def test_bad_choices_are_one_clear_error(kwargs, have, message):
    with pytest.raises(BabilabError, match=message) as caught:
        plan_device(**kwargs, have=have)
    assert "\n" not in str(caught.value)


def test_a_bad_device_on_the_command_line_is_one_line(small_suite, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "babilab.cli", "eval", "--suite",
                           str(small_suite.path), "--model", "hf:smollm2", "--run", str(run),
                           "--device", "gpu"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "babilab: error: device must be auto, cpu, cuda or cuda:N (N a GPU number), got 'gpu'"]
    assert not (run / "predictions.sqlite").exists()


def test_gpu_batches_are_bounded_by_the_memory_their_cache_takes():
    config = type("Config", (), {"num_hidden_layers": 32, "num_attention_heads": 32,
                                 "num_key_value_heads": 8, "hidden_size": 4096})  # Llama-3-8B
    per_token = kv_cache_bytes_per_token(config, "bfloat16")
    assert per_token == 128 * 1024  # 2 x 32 layers x 8 heads x 128 x 2 bytes
    assert gpu_batch_tokens(40 * 2**30, per_token) == 131072  # 40% of 40 GiB free
    assert gpu_batch_tokens(0, per_token) == 1  # a group always takes its first prompt


# --------------------------------------------------------------------------------------------
# The CUDA path, wherever CUDA exists


def requests(n=6):
    from babilab.babi import take_qas

    return [Request(f"qa1/0k/{i}", "qa1", " ".join(qa.facts), qa.question, qa.facts)
            for i, qa in enumerate(take_qas("qa1", "test", n, seed=5))]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_answers_equal_cpu_answers():
    reqs = requests()
    cpu = load_answerer("hf:smollm2", device="cpu", dtype="float32", max_new_tokens=8)
    cuda = load_answerer("hf:smollm2", device="cuda", dtype="float32", max_new_tokens=8)
    assert cuda.plan.device == "cuda:0" and cuda.model.device.type == "cuda"
    assert cuda.fingerprint != cpu.fingerprint  # kernels differ: a GPU run has its own key
    on_cpu = [a.output for a in cpu.answer(reqs, PromptConfig())]
    on_cuda = [a.output for a in cuda.answer(reqs, PromptConfig())]
    assert on_cuda == on_cpu and all(on_cpu)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_auto_batches_by_tokens_and_keeps_input_order():
    reqs = requests(8)
    auto = load_answerer("hf:smollm2", max_new_tokens=8)  # bfloat16 where the GPU has it
    assert auto.plan.kind == "cuda" and auto.batch_size == 64
    assert auto.max_batch_tokens > 8192  # sized by free memory, not the CPU's budget
    one = load_answerer("hf:smollm2", batch_size=1, max_new_tokens=8)
    batched = auto.answer(reqs, PromptConfig())
    alone = one.answer(reqs, PromptConfig())
    assert [a.prompt_tokens for a in batched] == [a.prompt_tokens for a in alone]
    # batching may move a near tie in bfloat16; nearly every answer must agree
    same = sum(a.output == b.output for a, b in zip(batched, alone, strict=True))
    assert same >= len(reqs) - 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_map_auto_answers():
    spread = load_answerer("hf:smollm2", device_map="auto", dtype="float32", max_new_tokens=8)
    one = load_answerer("hf:smollm2", device="cuda", dtype="float32", max_new_tokens=8)
    reqs = requests(3)
    assert ([a.output for a in spread.answer(reqs, PromptConfig())]
            == [a.output for a in one.answer(reqs, PromptConfig())])
