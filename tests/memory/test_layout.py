"""The one request layout (memory/layout.py): training and evaluation read the same segments.

A training sample is context, question, answer and EOS, cut by `MemoryModel.forward`; the
memory answerer reads the same context and question through `stream_segments`. Every segment
before the last must hold the same token ids, and the last one must be the same up to the
question, where training goes on with the answer and evaluation starts decoding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from babilab.haystack import prepare_background
from babilab.memory import RMT, RMTConfig, segment_batches
from babilab.memory.layout import context_length, n_segments, question_text, stream_segments
from babilab.models import Request, load_answerer
from babilab.models.memory import encode_long, save_checkpoint
from babilab.prompts import PromptConfig
from babilab.train.data import SampleMaker, collate, haystack_tokenizer

from ..train.train_fixtures import SEGMENT, write_backbone, write_corpus


def rows(steps, row: int = 0) -> list[list[int]]:
    """One sample's token ids in each step, padding dropped."""
    return [s.input_ids[row][s.attention_mask[row].bool()].tolist() for s in steps]


@pytest.mark.parametrize("segments", [1, 2, 3])
@pytest.mark.parametrize("n_question, n_answer", [(3, 2), (5, 3), (2, 1)])
def test_a_sample_of_whole_segments_is_cut_where_evaluation_cuts(segments, n_question, n_answer):
    """Toy ids, segment 8: a tail of 5 shares the last segment with the context's end; a tail
    of 8 fills it, so the question is alone in the last segment on both sides."""
    size = 8
    n_context = context_length(segments, size, n_question + n_answer)
    context = np.arange(100, 100 + n_context)
    question, answer = list(range(1, 1 + n_question)), list(range(50, 50 + n_answer))
    sample = [*context.tolist(), *question, *answer]
    assert len(sample) == segments * size
    trained = rows(segment_batches([sample], size))  # what MemoryModel.forward reads
    read = rows(stream_segments([context], [question], size))  # what the answerer reads
    assert len(trained) == len(read) == n_segments(n_context, n_question, size) == segments
    assert trained[:-1] == read[:-1]
    assert trained[-1] == read[-1] + answer


def recorded(model, monkeypatch) -> list[tuple[list[int], bool]]:
    """Every segment the model builds backbone inputs for: (its token ids, with a write?)."""
    seen = []
    real = model.segment_inputs

    def spy(state, segment, write):
        seen.append((rows([segment])[0], write))
        return real(state, segment, write)

    monkeypatch.setattr(model, "segment_inputs", spy)
    return seen


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny GPT-2 and its tokenizer, a train-split background, and an RMT saved around it."""
    corpus = write_corpus(tmp_path_factory.mktemp("corpus"))
    backbone = write_backbone(tmp_path_factory.mktemp("backbone"), corpus)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    background = prepare_background(f"dir:{corpus}", haystack_tokenizer(tokenizer, "tiny"),
                                    split="train", cache_dir=tmp_path_factory.mktemp("cache"))
    torch.manual_seed(0)
    model = RMT(AutoModelForCausalLM.from_pretrained(backbone),
                RMTConfig(segment_size=SEGMENT, num_mem_tokens=4))
    checkpoint = save_checkpoint(model, tokenizer, tmp_path_factory.mktemp("rmt"),
                                 save_backbone=True)
    return tokenizer, background, checkpoint


@pytest.mark.parametrize("questions_per_sample", [1, 2])
def test_training_and_evaluation_build_the_same_segments(world, monkeypatch, questions_per_sample):
    """The same samples through the real code paths: SampleMaker and the model's forward pass
    (training), the context's text and the question through `babilab eval`'s memory answerer
    (evaluation), the segments recorded where both hand them to the model."""
    tokenizer, background, checkpoint = world
    maker = SampleMaker(tokenizer, background, layout="memory", segment_size=SEGMENT,
                        tasks=["qa1", "qa2"], seed=0, eos_id=tokenizer.eos_token_id,
                        questions_per_sample=questions_per_sample)
    answerer = load_answerer(f"rmt:{checkpoint}", dtype="float32", max_new_tokens=1)
    model = answerer.model
    samples = [maker.valid_sample(i, segments) for i, segments in enumerate((1, 2, 3))]
    samples += [maker.train_sample(0, 0, row, segments=3, vary=True) for row in range(3)]
    assert {s.n_segments for s in samples} == {1, 2, 3}
    for sample in samples:
        seen = recorded(model, monkeypatch)
        with torch.no_grad():
            batch = collate([sample])
            model(batch.input_ids, batch.attention_mask, batch.labels)
        trained = list(seen)
        seen.clear()
        context = sample.input_ids[:sample.n_context_tokens]
        text = tokenizer.decode(context)  # the context as a suite holds it
        assert encode_long(tokenizer, text).tolist() == context.tolist()
        answerer.answer([Request("x", sample.task, text, sample.question)], PromptConfig())
        read = list(seen)

        assert len(trained) == len(read) == sample.n_segments
        assert [w for _, w in trained] == [True] * sample.n_segments
        assert [w for _, w in read] == [True] * (sample.n_segments - 1) + [False]  # read-only
        assert [ids for ids, _ in trained[:-1]] == [ids for ids, _ in read[:-1]]
        last_trained, last_read = trained[-1][0], read[-1][0]
        question = tokenizer(question_text(sample.question), add_special_tokens=False)["input_ids"]
        answer = tokenizer(" " + sample.target, add_special_tokens=False)["input_ids"]
        assert last_read[-len(question):] == question  # the question ends the last segment
        assert last_trained[:len(last_read)] == last_read
        assert last_trained[len(last_read):][:len(answer) + 1] == answer + [tokenizer.eos_token_id]
