"""Training and validation samples, made on the fly, each a pure function of its position.

Where the data comes from, and what it never touches:

* Stories: the bAbI generator's `train` split for training and its `valid` split for
  validation (babi/generate.py: the splits are disjoint by construction, and `test` is
  never asked for here). Story `index` of a split is regenerated directly (`story_at`), so
  any sample can be rebuilt alone.
* Background: the corpus's `train` books only (haystack: train and test books are disjoint),
  for validation too, with other random draws. Choosing a model on the test set was a trap in
  the reference scripts (github.com/booydar/recurrent-memory-transformer); here it cannot happen.

A training sample depends only on (seed, stage, step, row): its own numpy Generator draws the
segment count (curriculum.py), the task, the story, the question and the haystack. Resuming
needs no data state beyond (stage, step), and any number of processes sees the same samples.

Layout, identical to what the evaluation feeds the model, so training teaches exactly the
task that is scored:

    memory   [context] [question_text(q) + " answer" + EOS], segments x segment_size tokens
             in all: memory/layout.py's layout, the one the memory answerer reads too.
             The context is token-exact (haystack.assemble) and `context_length` leaves
             room for the questions, so they end the last segment beside the end of the
             context (tests/memory/test_layout.py checks both sides build the same ids).
    plain    format_prompt(task, context, q) with no instruction, examples, post-prompt or
             chat template (what `babilab eval --model hf:... --prompt instruction_no_...`
             sends) + " answer" + EOS, in one window.

Labels are -100 except on the answer tokens and the EOS: the loss, and the LM head,
cover exactly those. With `questions_per_sample` > 1 more questions about the same facts
follow the first (the story's earlier questions, then those of the next train stories, which
ask about the same kinds of entities), each answered by the bAbI solver from the same facts
(training only: the first question keeps the evaluation layout, the others add signal to the
same context pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from ..babi import load_task, solve
from ..babi.generate import split_of, story_rng
from ..babi.story import QA, Story
from ..errors import BabilabError
from ..haystack import Background, FactsDoNotFitError, Tokenizer, assemble
from ..haystack.assemble import FactPosition
from ..haystack.tokenizer import HFTokenizer
from ..memory.layout import IGNORE_INDEX, context_length, last_segment_start, question_text
from ..prompts import PromptConfig, format_prompt
from .curriculum import draw_segments

NO_PROMPT_PARTS = PromptConfig(instruction=False, examples=False, post_prompt=False,
                               chat_template=False)
PLAIN_NEXT_QUESTION = "\n\nQuestion: {question}"  # plain layout: a further question
STORY_SPACE = 1 << 40  # story indices drawn when no pool is set: every sample a fresh story
MAX_DRAWS = 64  # stories tried for one sample before giving up (facts that do not fit)
NEIGHBOUR_STORIES = 2  # stories whose questions are also asked of a sample's facts (training)
_TRAIN, _VALID = 0, 1  # stream tags in the seeds of the samples' Generators

Layout = Literal["memory", "plain"]


def story_at(task: str, split: str, seed: int, index: int) -> Story:
    """Story `index` of (task, split, seed): the one `babi.iter_stories` yields at `index`.

    The same draw as iter_stories (attempts until the story's text hashes to the split),
    without generating the stories before it.
    """
    module = load_task(task)
    attempt = 0
    while True:
        story = module.generate_story(story_rng(seed, task, split, index, attempt))
        if split_of(story) == split:
            return story
        attempt += 1


def haystack_tokenizer(tokenizer: Any, name: str) -> Tokenizer:
    """The haystack's view of a transformers fast tokenizer (a copy: the haystack switches
    special-token parsing off in the backend it holds)."""
    from tokenizers import Tokenizer as Backend

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise BabilabError(f"{name}: training needs a fast (tokenizers-backed) tokenizer")
    return HFTokenizer(Backend.from_str(backend.to_str()), name)


@dataclass(frozen=True)
class Sample:
    task: str
    split: str  # the bAbI split of the story: train or valid
    story_index: int
    question: str  # the first question (the one in the evaluation layout)
    target: str
    n_segments: int  # context segments
    books: tuple[str, ...]  # background books used, all from the corpus's train split
    input_ids: np.ndarray  # (L,) int64
    labels: np.ndarray  # (L,) int64: the token at answer and EOS positions, else -100
    n_context_tokens: int  # tokens before the questions (memory: the context; plain: the prompt)
    n_questions: int  # questions answered in the sample (the first, then any extra ones)
    facts: tuple[str, ...] = ()  # the story's facts, in order
    fact_positions: tuple[FactPosition, ...] = ()  # where each fact lies in the context

    @property
    def n_targets(self) -> int:
        """Scored positions (answer tokens and EOS of every question)."""
        return int((self.labels != IGNORE_INDEX).sum())


@dataclass(frozen=True)
class Batch:
    input_ids: Tensor  # (B, L) right-padded with 0
    attention_mask: Tensor  # (B, L) 1 on real tokens
    labels: Tensor  # (B, L) -100 on padding

    @property
    def n_targets(self) -> int:
        return int((self.labels[:, 1:] != IGNORE_INDEX).sum())


def collate(samples: Sequence[Sample], device: torch.device | str = "cpu") -> Batch:
    """Right-pad samples into one batch (the memory wrapper drops padding per row)."""
    width = max(len(s.input_ids) for s in samples)
    ids = torch.zeros(len(samples), width, dtype=torch.long)  # (B, L)
    mask = torch.zeros(len(samples), width, dtype=torch.long)  # (B, L)
    labels = torch.full((len(samples), width), IGNORE_INDEX, dtype=torch.long)  # (B, L)
    for i, s in enumerate(samples):
        n = len(s.input_ids)
        ids[i, :n] = torch.from_numpy(s.input_ids)
        mask[i, :n] = 1
        labels[i, :n] = torch.from_numpy(s.labels)
    return Batch(ids.to(device), mask.to(device), labels.to(device))


class SampleMaker:
    """Builds samples for one tokenizer, background and layout."""

    def __init__(self, tokenizer: Any, background: Background, *, layout: Layout,
                 segment_size: int, tasks: Sequence[str], seed: int, eos_id: int,
                 story_pool: int | None = None, questions_per_sample: int = 1,
                 facts_before_last: float = 0.0, valid_facts_before_last: float = 0.0):
        if background.meta.get("split") != "train":
            raise BabilabError("training and validation backgrounds come from train books only")
        self.tokenizer = tokenizer  # transformers tokenizer: questions, answers, plain prompts
        self.background = background
        self.layout = layout
        self.segment_size = segment_size
        self.tasks = list(tasks)
        self.seed = seed
        self.eos_id = eos_id
        self.story_pool = story_pool
        self.questions_per_sample = questions_per_sample
        self.facts_before_last = facts_before_last
        self.valid_facts_before_last = valid_facts_before_last

    def train_sample(self, stage: int, step: int, row: int, segments: int, vary: bool,
                     full_length_ratio: float = 0.0) -> Sample:
        """Row `row` of step `step` of stage `stage`: the same on every process and resume."""
        rng = np.random.default_rng([self.seed, _TRAIN, stage, step, row])
        n = draw_segments(rng, segments, vary, full_length_ratio)
        # (drawn only when asked for, so that the samples of other recipes stay as they were)
        before = n > 1 and self.facts_before_last > 0 and rng.random() < self.facts_before_last
        return self._make(rng, "train", n, self.story_pool or STORY_SPACE,
                          self.questions_per_sample, facts_before_last=before)

    def valid_sample(self, index: int, segments: int) -> Sample:
        """Validation question `index` at `segments` context segments (bAbI valid split)."""
        rng = np.random.default_rng([self.seed, _VALID, index])
        share = self.valid_facts_before_last  # drawn only when asked for, as in train_sample
        before = segments > 1 and share > 0 and rng.random() < share
        return self._make(rng, "valid", segments, STORY_SPACE, 1, facts_before_last=before)

    # --- building one sample --------------------------------------------------------------

    def _make(self, rng: np.random.Generator, split: str, segments: int, pool: int,
              n_questions: int, facts_before_last: bool = False) -> Sample:
        """With `facts_before_last`, every fact lies before the last segment (the one with
        the question), so the answer can only come through the memory."""
        length = segments * self.segment_size  # context and questions fill the segments
        last_start = last_segment_start(segments, self.segment_size)
        for _ in range(MAX_DRAWS):
            task = self.tasks[int(rng.integers(len(self.tasks)))]
            index = int(rng.integers(pool))
            story = story_at(task, split, self.seed, index)
            qas = list(story.questions())
            j = int(rng.integers(len(qas)))
            extra = self._candidates(task, split, index, pool, qas[:j], rng) if n_questions > 1 else []
            questions = [(qas[j].question, qas[j].answer)]
            questions += self._more_questions(task, qas[j], extra, n_questions - 1)
            questions = questions[:self._questions_that_fit(questions)]
            # All the questions if the facts still fit beside them, else the first alone. The
            # context leaves room for them in the memory layout, in both layouts (same data).
            for asked in ([questions, questions[:1]] if len(questions) > 1 else [questions]):
                n_tail = sum(len(q) + len(a) for q, a in self._tail(asked, "memory"))
                n_context = context_length(segments, self.segment_size, n_tail)
                placement = "uniform"
                if facts_before_last:  # the context's share that precedes the last segment
                    placement = f"window:0-{min(100.0, 100 * (last_start / n_context)):.4f}"
                try:
                    context = assemble(qas[j], n_context, rng, self.background,
                                       placement=placement, reserve_tokens=0)
                except FactsDoNotFitError:
                    continue  # like the ARMT scripts' max_n_facts: this story is too long here
                if facts_before_last and any(p.token_offset + p.n_tokens > last_start
                                             for p in context.positions):
                    continue  # the facts do not fit before the last segment: another story
                return self._encode(task, split, index, segments, qas[j],
                                    self._tail(asked, self.layout), context)
        raise BabilabError(
            f"no {'/'.join(self.tasks)} story of the {split} split fits in {length} tokens "
            f"({segments} x {self.segment_size}) in {MAX_DRAWS} draws; use a larger "
            f"segment_size or start the curriculum at more segments")

    def _candidates(self, task: str, split: str, index: int, pool: int, earlier: list[QA],
                    rng: np.random.Generator) -> list[QA]:
        """Further questions to ask about one story: its earlier ones, then those of the next
        stories of the split (same templates, other entities), each in a random order. The
        ones the facts cannot answer are dropped later (`_more_questions`)."""
        neighbours = [q for k in range(1, NEIGHBOUR_STORIES + 1)
                      for q in story_at(task, split, self.seed, (index + k) % pool).questions()]
        return ([earlier[i] for i in rng.permutation(len(earlier))]
                + [neighbours[i] for i in rng.permutation(len(neighbours))])

    def _tail(self, questions: list[tuple[str, str]], layout: Layout
              ) -> list[tuple[list[int], list[int]]]:
        """(question ids, answer ids + EOS) per question, in `layout`."""
        return [(self._question_ids(q, first=k == 0, layout=layout), self._answer_ids(a))
                for k, (q, a) in enumerate(questions)]

    def _questions_that_fit(self, questions: list[tuple[str, str]]) -> int:
        """How many questions the last segment takes (memory layout): the first, which must
        fit a segment, then as many as fit in half a segment (the rest is context)."""
        tail = self._tail(questions, "memory")
        first = len(tail[0][0]) + len(tail[0][1])
        if first > self.segment_size:
            raise BabilabError(
                f"question and answer take {first} tokens, more than segment_size "
                f"{self.segment_size}: the question must fit one segment")
        used = first
        for k, (q_ids, a_ids) in enumerate(tail[1:], start=1):
            used += len(q_ids) + len(a_ids)
            if used > self.segment_size // 2:
                return k
        return len(tail)

    def _answer_ids(self, answer: str) -> list[int]:
        return self._ids(" " + answer) + [self.eos_id]

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _question_ids(self, question: str, first: bool, layout: Layout) -> list[int]:
        """The tokens before an answer: the plain prompt already ends with the first question."""
        if layout == "memory":
            return self._ids(question_text(question))
        return [] if first else self._ids(PLAIN_NEXT_QUESTION.format(question=question))

    def _more_questions(self, task: str, qa: QA, candidates: list[QA], n: int) -> list[tuple[str, str]]:
        """Up to n other candidate questions, in order, answered from `qa`'s facts."""
        out: list[tuple[str, str]] = []
        seen = {qa.question}
        for other in candidates:
            if len(out) == n:
                break
            if other.question in seen:
                continue
            seen.add(other.question)
            try:
                answer = solve(task, list(qa.facts), other.question)
            except Exception:  # the solver cannot answer it from these facts: leave it out
                continue
            out.append((other.question, answer))
        return out

    def _encode(self, task: str, split: str, index: int, segments: int, qa: QA,
                tail: list[tuple[list[int], list[int]]], context: Any) -> Sample:
        if self.layout == "memory":
            head = context.token_ids().astype(np.int64).tolist()
        else:
            prompt = format_prompt(task, context.text(), qa.question, NO_PROMPT_PARTS)
            head = list(self.tokenizer(prompt)["input_ids"])  # as the hf answerer encodes it
        ids, labels = list(head), [IGNORE_INDEX] * len(head)
        for q_ids, a_ids in tail:
            ids += q_ids + a_ids
            labels += [IGNORE_INDEX] * len(q_ids) + a_ids
        if self.layout == "memory" and len(ids) != segments * self.segment_size:
            raise BabilabError(f"sample has {len(ids)} tokens, expected "  # assemble's contract
                               f"{segments * self.segment_size}")
        return Sample(
            task=task, split=split, story_index=index, question=qa.question, target=qa.answer,
            n_segments=segments, books=context.books,
            input_ids=np.asarray(ids, dtype=np.int64), labels=np.asarray(labels, dtype=np.int64),
            n_context_tokens=len(head), n_questions=len(tail), facts=tuple(qa.facts),
            fact_positions=tuple(context.positions))


__all__ = ["Batch", "NO_PROMPT_PARTS", "Sample", "SampleMaker", "collate", "haystack_tokenizer",
           "story_at"]
