"""Training and validation samples, made on the fly, each a pure function of its position.

Where the data comes from, and what it never touches:

* Stories: the bAbI generator's `train` split for training and its `valid` split for
  validation (babi/generate.py: the splits are disjoint by construction, and `test` is
  never asked for here). Story `index` of a split is regenerated directly (`story_at`), so
  any sample can be rebuilt alone.
* Background: the corpus's `train` books only (haystack: train and test books are disjoint),
  for validation too, with other random draws. Choosing a model on the test set was a trap in
  the reference scripts (shared/reference/memory_models.md §7); here it cannot happen.

A training sample depends only on (seed, stage, step, row): its own numpy Generator draws the
segment count (curriculum.py), the task, the story, the question and the haystack. Resuming
needs no data state beyond (stage, step), and any number of processes sees the same samples.

Layout, identical to what the evaluation feeds the model (models/memory.py), so training
teaches exactly the task that is scored:

    memory   [context: segments x segment_size tokens] [question_text(q) + " answer" + EOS]
             The context is token-exact (haystack.assemble with no reserve), so the question
             part, at most one segment, is a segment of its own, read after the context.
    plain    format_prompt(task, context, q) with no instruction, examples, post-prompt or
             chat template (what `babilab eval --model hf:... --prompt instruction_no_...`
             sends) + " answer" + EOS, in one window.

Labels are -100 except on the answer tokens and the EOS (§1.4): the loss, and the LM head,
cover exactly those. With `questions_per_sample` > 1 more questions about the same story
follow the first, each answered by the bAbI solver from the same facts (training only: the
first question keeps the evaluation layout, the others add signal to the same context pass).
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
from ..haystack.tokenizer import HFTokenizer
from ..memory.common import IGNORE_INDEX
from ..models.memory import question_text
from ..prompts import PromptConfig, format_prompt
from .curriculum import draw_segments

NO_PROMPT_PARTS = PromptConfig(instruction=False, examples=False, post_prompt=False,
                               chat_template=False)
PLAIN_NEXT_QUESTION = "\n\nQuestion: {question}"  # plain layout: a further question
STORY_SPACE = 1 << 40  # story indices drawn when no pool is set: every sample a fresh story
MAX_DRAWS = 64  # stories tried for one sample before giving up (facts that do not fit)
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
                 story_pool: int | None = None, questions_per_sample: int = 1):
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

    def train_sample(self, stage: int, step: int, row: int, segments: int, vary: bool,
                     full_length_ratio: float = 0.0) -> Sample:
        """Row `row` of step `step` of stage `stage`: the same on every process and resume."""
        rng = np.random.default_rng([self.seed, _TRAIN, stage, step, row])
        n = draw_segments(rng, segments, vary, full_length_ratio)
        return self._make(rng, "train", n, self.story_pool or STORY_SPACE,
                          self.questions_per_sample)

    def valid_sample(self, index: int, segments: int) -> Sample:
        """Validation question `index` at `segments` context segments (bAbI valid split)."""
        rng = np.random.default_rng([self.seed, _VALID, index])
        return self._make(rng, "valid", segments, STORY_SPACE, 1)

    # --- building one sample --------------------------------------------------------------

    def _make(self, rng: np.random.Generator, split: str, segments: int, pool: int,
              n_questions: int) -> Sample:
        length = segments * self.segment_size
        for _ in range(MAX_DRAWS):
            task = self.tasks[int(rng.integers(len(self.tasks)))]
            index = int(rng.integers(pool))
            story = story_at(task, split, self.seed, index)
            qas = list(story.questions())
            j = int(rng.integers(len(qas)))
            extra = [qas[i] for i in rng.permutation(j)] if n_questions > 1 else []
            try:
                context = assemble(qas[j], length, rng, self.background, reserve_tokens=0)
            except FactsDoNotFitError:
                continue  # like the ARMT scripts' max_n_facts: this story is too long here
            return self._encode(task, split, index, segments, qas[j], extra[:4 * n_questions],
                                context, n_questions)
        raise BabilabError(
            f"no {'/'.join(self.tasks)} story of the {split} split fits in {length} tokens "
            f"({segments} x {self.segment_size}) in {MAX_DRAWS} draws; use a larger "
            f"segment_size or start the curriculum at more segments")

    def _answer_ids(self, answer: str) -> list[int]:
        return self._ids(" " + answer) + [self.eos_id]

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _question_ids(self, question: str, first: bool) -> list[int]:
        """The tokens before an answer: the plain prompt already ends with the first question."""
        if self.layout == "memory":
            return self._ids(question_text(question))
        return [] if first else self._ids(PLAIN_NEXT_QUESTION.format(question=question))

    def _more_questions(self, task: str, qa: QA, earlier: list[QA], n: int) -> list[tuple[str, str]]:
        """Up to n questions asked earlier in the story, answered from `qa`'s facts."""
        out: list[tuple[str, str]] = []
        seen = {qa.question}
        for other in earlier:
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
                earlier: list[QA], context: Any, n_questions: int) -> Sample:
        questions = [(qa.question, qa.answer)]
        questions += self._more_questions(task, qa, earlier, n_questions - 1)
        if self.layout == "memory":
            head = context.token_ids().astype(np.int64).tolist()
            if len(head) != segments * self.segment_size:  # assemble's contract; a bug if not
                raise BabilabError(f"context has {len(head)} tokens, expected "
                                   f"{segments * self.segment_size}")
        else:
            prompt = format_prompt(task, context.text(), qa.question, NO_PROMPT_PARTS)
            head = list(self.tokenizer(prompt)["input_ids"])  # as the hf answerer encodes it

        ids, labels = list(head), [IGNORE_INDEX] * len(head)
        tail: list[int] = []  # memory: the last segment (questions and answers)
        used = 0
        for k, (question, answer) in enumerate(questions):
            q_ids = self._question_ids(question, first=k == 0)
            a_ids = self._answer_ids(answer)
            if self.layout == "memory" and len(tail) + len(q_ids) + len(a_ids) > self.segment_size:
                if k == 0:
                    raise BabilabError(
                        f"question and answer take {len(q_ids) + len(a_ids)} tokens, more than "
                        f"segment_size {self.segment_size}: the question must fit one segment")
                break
            tail += q_ids + a_ids
            ids += q_ids + a_ids
            labels += [IGNORE_INDEX] * len(q_ids) + a_ids
            used += 1
        return Sample(
            task=task, split=split, story_index=index, question=qa.question, target=qa.answer,
            n_segments=segments, books=context.books,
            input_ids=np.asarray(ids, dtype=np.int64), labels=np.asarray(labels, dtype=np.int64),
            n_context_tokens=len(head), n_questions=used)


__all__ = ["Batch", "NO_PROMPT_PARTS", "Sample", "SampleMaker", "collate", "haystack_tokenizer",
           "story_at"]
