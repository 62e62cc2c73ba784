"""Samples: deterministic by position, the evaluation's layout, loss only on answers, and
never a test story or a test book."""

import re
from itertools import islice

import numpy as np
import pytest
from transformers import AutoTokenizer

from babilab.babi import iter_stories, solve
from babilab.babi.generate import split_of
from babilab.errors import BabilabError
from babilab.haystack import open_corpus, prepare_background
from babilab.models.memory import question_text
from babilab.prompts import format_prompt
from babilab.train.data import NO_PROMPT_PARTS, SampleMaker, collate, haystack_tokenizer, story_at

from .train_fixtures import EOS, SEGMENT


@pytest.fixture(scope="module")
def tokenizer(backbone):
    return AutoTokenizer.from_pretrained(backbone)


@pytest.fixture(scope="module")
def background(tmp_path_factory, corpus, tokenizer):
    return prepare_background(f"dir:{corpus}", haystack_tokenizer(tokenizer, "tiny"),
                              split="train", cache_dir=tmp_path_factory.mktemp("cache"))


def maker(tokenizer, background, layout="memory", **kw) -> SampleMaker:
    return SampleMaker(tokenizer, background, layout=layout, segment_size=SEGMENT,
                       tasks=kw.pop("tasks", ["qa1", "qa2"]), seed=0,
                       eos_id=tokenizer.eos_token_id, **kw)


def test_story_at_is_the_stream_of_iter_stories():
    for task in ("qa1", "qa2"):
        for split in ("train", "valid"):
            stream = list(islice(iter_stories(task, split, seed=3), 6))
            assert [story_at(task, split, 3, i) for i in range(6)] == stream


def test_samples_depend_only_on_their_position(tokenizer, background):
    a = maker(tokenizer, background)
    b = maker(tokenizer, background)
    one = a.train_sample(1, 7, 3, segments=2, vary=True)
    assert np.array_equal(one.input_ids, b.train_sample(1, 7, 3, segments=2, vary=True).input_ids)
    others = [a.train_sample(1, 7, row, segments=2, vary=True) for row in range(4)]
    assert len({s.input_ids.tobytes() for s in others}) == 4
    assert not np.array_equal(one.input_ids, a.train_sample(1, 8, 3, 2, True).input_ids)


def test_memory_layout_the_question_ends_the_last_segment(tokenizer, background):
    m = maker(tokenizer, background)
    drawn = set()
    for row in range(8):
        s = m.train_sample(0, 0, row, segments=3, vary=True)
        drawn.add(s.n_segments)
        # token-exact: context and question fill the segments, the question ends the last one
        assert len(s.input_ids) == s.n_segments * SEGMENT
        tail = s.input_ids[s.n_context_tokens:]
        assert 0 < len(tail) < SEGMENT and s.n_context_tokens > (s.n_segments - 1) * SEGMENT
        q = tokenizer(question_text(s.question), add_special_tokens=False)["input_ids"]
        a = tokenizer(" " + s.target, add_special_tokens=False)["input_ids"]
        assert tail.tolist() == q + a + [tokenizer.eos_token_id]
        # loss only on the answer tokens and the EOS
        scored = s.labels != -100
        assert scored.sum() == len(a) + 1 and scored[-len(a) - 1:].all()
        assert (s.labels[scored] == s.input_ids[scored]).all()
    assert len(drawn) > 1 and drawn <= {1, 2, 3}  # vary_segments draws 1..3


def test_plain_layout_is_what_the_hf_answerer_sends(tokenizer, background):
    memory, plain = maker(tokenizer, background), maker(tokenizer, background, "plain")
    s, p = memory.valid_sample(0, 2), plain.valid_sample(0, 2)
    assert (s.question, s.target, s.books) == (p.question, p.target, p.books)  # same data
    n_prompt = int(np.argmax(p.labels != -100))
    context = tokenizer.decode(s.input_ids[:s.n_context_tokens])
    prompt = format_prompt(s.task, context, s.question, NO_PROMPT_PARTS)
    assert p.input_ids[:n_prompt].tolist() == tokenizer(prompt)["input_ids"]


def test_more_questions_share_the_last_segment(tokenizer, background):
    m = maker(tokenizer, background, tasks=["qa1"], questions_per_sample=3)
    samples = [m.train_sample(0, 0, row, segments=2, vary=False) for row in range(6)]
    assert max(s.n_questions for s in samples) > 1
    for s in samples:
        assert len(s.input_ids) - s.n_context_tokens <= SEGMENT // 2
        eos_scored = (s.labels == tokenizer.eos_token_id).sum()
        assert eos_scored == s.n_questions


def test_more_questions_are_all_answered_from_the_samples_own_facts(tokenizer, background):
    m = maker(tokenizer, background, tasks=["qa1"], questions_per_sample=4)
    asked = []
    for row in range(8):
        s = m.train_sample(0, 0, row, segments=2, vary=False)
        story = story_at(s.task, s.split, 0, s.story_index)
        tail = tokenizer.decode(s.input_ids[s.n_context_tokens:].tolist())
        pairs = re.findall(r"Question: (.+?)\nAnswer: (\w+)" + re.escape(EOS), tail)
        assert len(pairs) == s.n_questions and pairs[0] == (s.question, s.target)
        assert len({q for q, _ in pairs}) == len(pairs)  # never the same question twice
        # the story may ask the first question twice: one of those points answers them all
        assert any(all(solve("qa1", list(qa.facts), q) == a for q, a in pairs)
                   for qa in story.questions() if qa.question == s.question)
        asked += [q for q, _ in pairs[1:]]
    assert len(asked) >= 8  # about one more question per sample at least


def test_training_and_validation_never_touch_test_stories_or_books(tokenizer, background, corpus):
    test_books = {d.book_id for d in open_corpus(f"dir:{corpus}", "test").documents()}
    train_books = {d.book_id for d in open_corpus(f"dir:{corpus}", "train").documents()}
    assert test_books and train_books and not test_books & train_books
    assert set(background.book_ids) == train_books
    m = maker(tokenizer, background)
    train = [m.train_sample(0, step, row, 2, True) for step in range(4) for row in range(4)]
    valid = [m.valid_sample(i, 2) for i in range(12)]
    for s in train + valid:
        assert set(s.books) <= train_books
        assert split_of(story_at(s.task, s.split, 0, s.story_index)) == s.split
    assert {s.split for s in train} == {"train"} and {s.split for s in valid} == {"valid"}


def test_facts_that_never_fit_are_one_clear_error(tokenizer, background):
    m = SampleMaker(tokenizer, background, layout="memory", segment_size=20, tasks=["qa2"],
                    seed=0, eos_id=tokenizer.eos_token_id)
    with pytest.raises(BabilabError, match="fits in 20 tokens"):
        m.valid_sample(0, 1)
    m = SampleMaker(tokenizer, background, layout="memory", segment_size=4, tasks=["qa2"],
                    seed=0, eos_id=tokenizer.eos_token_id)
    with pytest.raises(BabilabError, match="the question must fit one segment"):
        m.valid_sample(0, 1)


def test_only_train_backgrounds(tokenizer, corpus, tmp_path):
    test_bg = prepare_background(f"dir:{corpus}", haystack_tokenizer(tokenizer, "tiny"),
                                 split="test", cache_dir=tmp_path)
    with pytest.raises(BabilabError, match="train books only"):
        maker(tokenizer, test_bg)


def test_collate_right_pads(tokenizer, background):
    m = maker(tokenizer, background)
    samples = [m.train_sample(0, 0, row, 2, True) for row in range(3)]
    batch = collate(samples)
    assert batch.attention_mask.sum(1).tolist() == [len(s.input_ids) for s in samples]
    assert batch.n_targets == sum(s.n_targets for s in samples)


def test_facts_before_last_put_every_fact_before_the_questions_segment(tokenizer, background):
    """The share asked for lies wholly before the last segment; the rest is placed as usual,
    and a recipe without the option draws exactly the samples it drew before."""
    plain, forced = maker(tokenizer, background), maker(tokenizer, background, facts_before_last=1.0)
    half = maker(tokenizer, background, facts_before_last=0.5)
    segments, before, usual = 4, 0, 0
    for step in range(30):
        f = forced.train_sample(0, step, 0, segments, vary=False)
        last_start = (f.n_segments - 1) * SEGMENT
        assert all(p.token_offset + p.n_tokens <= last_start for p in f.fact_positions)
        h = half.train_sample(0, step, 0, segments, vary=False)
        if all(p.token_offset + p.n_tokens <= last_start for p in h.fact_positions):
            before += 1
        p = plain.train_sample(0, step, 0, segments, vary=False)
        usual += any(q.token_offset + q.n_tokens > last_start for q in p.fact_positions)
    assert 5 <= before <= 28 and usual > 0  # a share of them, not all or none
    off = maker(tokenizer, background, facts_before_last=0.0).train_sample(0, 3, 1, segments, True)
    same = plain.train_sample(0, 3, 1, segments, True)
    assert np.array_equal(off.input_ids, same.input_ids)
    one = forced.train_sample(0, 0, 0, 1, vary=False)  # one segment: nothing lies before it
    assert one.n_segments == 1 and one.fact_positions


def test_valid_facts_before_last_puts_validation_facts_before_the_questions_segment(tokenizer,
                                                                                    background):
    """Validation questions follow `valid_facts_before_last` as training samples follow
    `facts_before_last`; without it they are the questions drawn before."""
    plain = maker(tokenizer, background)
    forced = maker(tokenizer, background, valid_facts_before_last=1.0)
    segments = 3
    last_start = (segments - 1) * SEGMENT
    for index in range(10):
        f = forced.valid_sample(index, segments)
        assert f.fact_positions and all(p.token_offset + p.n_tokens <= last_start
                                        for p in f.fact_positions)
    spread = sum(any(p.token_offset + p.n_tokens > last_start for p in
                     plain.valid_sample(index, segments).fact_positions) for index in range(10))
    assert spread > 0  # uniform placement reaches the last segment
    off = maker(tokenizer, background, valid_facts_before_last=0.0).valid_sample(4, segments)
    assert np.array_equal(off.input_ids, plain.valid_sample(4, segments).input_ids)
    training = forced.train_sample(0, 3, 1, segments, True)  # training samples are untouched
    assert np.array_equal(training.input_ids, plain.train_sample(0, 3, 1, segments, True).input_ids)
