"""Trivial qa1 baselines that read the facts: what a model scores without tracking anyone.

    heuristic:last-place      the location of the latest move, whoever made it
    heuristic:actor-places    a guess among the locations the asked actor has been to

A memory model that "reads" qa1 has to beat both: the first is what recency alone gives, the
second what knowing the actor's places (but not their order) gives. Like the oracle they
read the recorded facts, so they are upper bounds of the strategies they stand for. The
guess is a pure function of the sample id, so a run is reproducible and resumable.
"""

from __future__ import annotations

import hashlib
import re
import time

from ..babi.tasks.common import MOVE_RE
from ..errors import BabilabError
from ..prompts import PromptConfig
from .base import Answer, Answerer, Request, fingerprint_of, register

RULES = ("last-place", "actor-places")
_WHERE_RE = re.compile(r"^Where is (?P<actor>[A-Z][a-z]+)\?$")


def last_place(facts: list[str], question: str) -> str:
    """The location of the latest move in the facts."""
    for fact in reversed(facts):
        if move := MOVE_RE.match(fact):
            return move["location"]
    raise ValueError("no move among the facts")


def actor_places(facts: list[str], question: str, key: str) -> str:
    """One of the distinct places the asked actor moved to, chosen by a hash of `key`."""
    asked = _WHERE_RE.match(question)
    if asked is None:
        raise ValueError(f"not a 'Where is ACTOR?' question: {question!r}")
    places = sorted({m["location"] for f in facts
                     if (m := MOVE_RE.match(f)) and m["actor"] == asked["actor"]})
    if not places:
        raise ValueError(f"{asked['actor']} never moved")
    pick = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % len(places)
    return places[pick]


@register("heuristic")
class HeuristicAnswerer(Answerer):
    def __init__(self, rule: str):
        if rule not in RULES:
            raise BabilabError(f"unknown heuristic {rule!r}; use heuristic:{' or heuristic:'.join(RULES)}")
        self.rule = rule

    @classmethod
    def from_spec(cls, arg: str = "", **options: object) -> HeuristicAnswerer:
        return cls(arg.strip())

    @property
    def label(self) -> str:
        return self.rule

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(backend="heuristic", rule=self.rule)

    def answer(self, requests: list[Request], config: PromptConfig) -> list[Answer]:
        answers = []
        for r in requests:
            start = time.perf_counter()
            if r.task != "qa1":
                answers.append(Answer("", error=f"heuristic:{self.rule} answers qa1 only"))
                continue
            try:
                if self.rule == "last-place":
                    output = last_place(list(r.facts), r.question)
                else:
                    output = actor_places(list(r.facts), r.question, r.sample_id)
            except ValueError as e:
                answers.append(Answer("", error=str(e)))
                continue
            answers.append(Answer(output, elapsed_s=time.perf_counter() - start))
        return answers
