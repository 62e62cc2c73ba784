"""The shared object world of qa2, qa3, qa5, qa6, qa7 and qa8 (as in the released data).

Two halves that never call each other:

* `World`, the generator side: the true state of actors, objects and locations, the
  statement sampler (move / get / drop / give with their validity rules and " there"
  shares), and the bookkeeping the task modules need to pick questions.
* `parse_event`, the solver side: one statement's text -> an `Event`. Every solver replays
  the events it reads; nothing of the generator's state reaches it.

Not here: question choice, answers and supports. Each task module owns those, so the rules
of one task can be read in one file.
"""

from __future__ import annotations

import random
import re
from bisect import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from math import prod
from typing import NamedTuple, TypeVar

from ..story import Line, Question, Statement, Story
from ..vocab import DROP, GET, GIVE, LOCATIONS, MOVE, OBJECTS, sentence
from .common import MOVE_RE

# Statement kinds, shared by both halves.
MOVE_KIND, GET_KIND, DROP_KIND, GIVE_KIND = "move", "get", "drop", "give"
KINDS = (MOVE_KIND, GET_KIND, DROP_KIND, GIVE_KIND)

T = TypeVar("T")

# =========================================================================================
# Generator: the true world
# =========================================================================================
# qa3 stories average 74 statements, so the sampler is written for speed: draws use one
# `random()` call each (`_pick`, `Weighted`) and statement lines are cached (`_statement`).


def _pick(rng: random.Random, options: Sequence[T]) -> T:
    """`rng.choice`, about twice as fast (one `random()` call instead of `getrandbits`)."""
    return options[int(rng.random() * len(options))]


class Weighted:
    """Repeated draws from fixed options and weights: one `random()` and a bisect per
    draw, several times cheaper than `Random.choices`."""

    def __init__(self, options: tuple[T, ...], weights: tuple[float, ...]):
        self.options = options
        self.cumulative = list(accumulate(weights))
        self.total = self.cumulative[-1]

    def __call__(self, rng: random.Random) -> T:
        return self.options[bisect(self.cumulative, rng.random() * self.total)]


@cache
def _statement(template: str, a: str, second: str, there: bool = False, b: str = "") -> Statement:
    """A statement line, shared between stories (it is immutable). `second` fills the
    object or the location slot (a template has one of them); `there` appends " there"."""
    return Statement(sentence(template + (" there" if there else ""), a=a, o=second, l=second,
                              b=b))


# Where a move may go: anywhere but the actor's location.
_ELSEWHERE = {here: tuple(x for x in LOCATIONS if x != here) for here in LOCATIONS}


@dataclass(frozen=True)
class Mix:
    """How a task samples statements.

    `weights` are draw weights per kind (move, get, drop, give), not output shares: a draw
    whose kind has no valid instance right now is redrawn, so each task fits its weights
    until the output mix matches the released data's answer mix.
    """

    weights: tuple[float, float, float, float]
    get_there: float  # share of get sentences ending in " there"
    drop_there: float
    # Optional preference per actor or object name (default 1): a get or give is picked
    # among the valid ones with weight = the product of its entities' preferences. qa5
    # uses it for the released data's uneven answers (Mary 18.5% ... Jeff 14.5%).
    prefer: tuple[tuple[str, float], ...] = ()


class Said(NamedTuple):
    """One emitted statement, as the generator knows it."""

    line_id: int
    kind: str
    actor: str
    obj: str | None = None
    other: str | None = None  # move: the new location; give: the receiver


class Carry(NamedTuple):
    """An object carried from one location to the next by its holder's move (qa3)."""

    source: str  # location before
    target: str  # location after
    move_in: int  # line id of the move into `target`
    move_before: int  # line id of the carrier's move into `source`
    carrier: str


class World:
    """The true state of one story's world, the story told so far, and what the task
    modules need to pick questions.

    Actors and objects start at hidden random locations, so a get or a give can happen
    before the reader knows where anyone is (as in the released data), but the rules
    are always checked against the true state: gets happen where the object is, gives
    between two actors in one place, drops and gives only of held objects. A reader learns
    an actor's location from their moves only, and no question relies on anything else,
    so the text never contradicts itself.
    """

    def __init__(self, task: str, rng: random.Random, actors: tuple[str, ...], mix: Mix):
        self.task = task
        self.rng = rng
        self.actors = actors
        self.mix = mix
        self.lines: list[Line] = []  # the story so far; line id = index + 1
        self.said: list[Said] = []  # the statements among them
        self.loc = {a: _pick(rng, LOCATIONS) for a in actors}  # told once they move
        self.last_move: dict[str, int] = {}  # actor -> line id of their latest move
        self.obj_loc = {o: _pick(rng, LOCATIONS) for o in OBJECTS}  # while not held
        self.holder: dict[str, str | None] = {o: None for o in OBJECTS}
        self.held: dict[str, list[str]] = {a: [] for a in actors}  # in acquisition order
        self.last_touch: dict[str, tuple[int, str]] = {}  # obj -> (line id, actor), latest get/drop
        self.drop_move: dict[str, int | None] = {}  # obj -> the dropper's move before the drop
        self.carry: dict[str, Carry | None] = {}  # obj -> latest carry, None if untold (qa3)
        self.object_events: dict[str, list[int]] = {a: [] for a in actors}  # gets/drops/gives
        self.last_give: dict[str, int] = {}  # obj -> line id of its latest give
        self._draw_kind = Weighted(KINDS, mix.weights)
        self._prefer = dict(mix.prefer)

    # --- the story ----------------------------------------------------------------------

    def ask(self, text: str, answer: str, supports: Sequence[int]) -> None:
        self.lines.append(Question(text, answer, tuple(supports)))

    def story(self) -> Story:
        return Story(self.task, tuple(self.lines))

    def back(self, k: int) -> Said | None:
        """The statement k statements before the end (0 = the latest), if there is one."""
        return self.said[-1 - k] if k < len(self.said) else None

    # --- statements ---------------------------------------------------------------------

    def step(self) -> Said:
        """Tell one valid statement, its kind drawn by the mix's weights."""
        rng, loc, actors = self.rng, self.loc, self.actors
        while True:
            kind = self._draw_kind(rng)
            if kind == MOVE_KIND:
                actor = actors[int(rng.random() * len(actors))]
                elsewhere = _ELSEWHERE[loc[actor]]
                return self._move(actor, elsewhere[int(rng.random() * len(elsewhere))])
            if kind == GET_KIND:
                options = [(a, o) for o in OBJECTS if self.holder[o] is None
                           for a in actors if loc[a] == self.obj_loc[o]]
                if options:
                    return self._get(*self._choose(options))
            elif kind == DROP_KIND:
                options = [(a, o) for a in actors for o in self.held[a]]
                if options:
                    return self._drop(*_pick(rng, options))
            else:
                options = [(a, o, b) for a in actors for o in self.held[a]
                           for b in actors if b != a and loc[b] == loc[a]]
                if options:
                    return self._give(*self._choose(options))

    def _choose(self, options: list[tuple[str, ...]]) -> tuple[str, ...]:
        if not self._prefer:
            return _pick(self.rng, options)
        weights = [prod(self._prefer.get(name, 1.0) for name in option) for option in options]
        return self.rng.choices(options, weights)[0]

    def _say(self, line: Statement, kind: str, actor: str, obj: str | None = None,
             other: str | None = None) -> Said:
        self.lines.append(line)
        said = Said(len(self.lines), kind, actor, obj, other)
        self.said.append(said)
        return said

    def _move(self, actor: str, location: str) -> Said:
        said = self._say(_statement(_pick(self.rng, MOVE), actor, location),
                         MOVE_KIND, actor, None, location)
        before = self.last_move.get(actor)
        for obj in self.held[actor]:
            # The object moves with its holder; a reader can tell where from only if the
            # holder's previous location was told.
            self.carry[obj] = (Carry(self.loc[actor], location, said.line_id, before, actor)
                               if before is not None else None)
        self.last_move[actor] = said.line_id
        self.loc[actor] = location
        return said

    def _get(self, actor: str, obj: str) -> Said:
        rng = self.rng
        there = rng.random() < self.mix.get_there
        said = self._say(_statement(_pick(rng, GET), actor, obj, there), GET_KIND, actor, obj)
        self.holder[obj] = actor
        self.held[actor].append(obj)
        self.last_touch[obj] = (said.line_id, actor)
        self.object_events[actor].append(said.line_id)
        return said

    def _drop(self, actor: str, obj: str) -> Said:
        rng = self.rng
        there = rng.random() < self.mix.drop_there
        said = self._say(_statement(_pick(rng, DROP), actor, obj, there), DROP_KIND, actor, obj)
        self.holder[obj] = None
        self.held[actor].remove(obj)
        self.obj_loc[obj] = self.loc[actor]
        self.last_touch[obj] = (said.line_id, actor)
        self.drop_move[obj] = self.last_move.get(actor)
        self.object_events[actor].append(said.line_id)
        return said

    def _give(self, actor: str, obj: str, receiver: str) -> Said:
        said = self._say(_statement(_pick(self.rng, GIVE), actor, obj, False, receiver),
                         GIVE_KIND, actor, obj, receiver)
        self.holder[obj] = receiver
        self.held[actor].remove(obj)
        self.held[receiver].append(obj)
        self.last_give[obj] = said.line_id
        self.object_events[actor].append(said.line_id)
        self.object_events[receiver].append(said.line_id)
        return said


def ask_by_recency(rng: random.Random, weights: tuple[float, ...], options: list[list[T]],
                   tries: int) -> T | None:
    """Draw k (statements back) from `weights`; return a random one of `options[k]`.

    Up to `tries` draws; None when all of them miss, and the caller then tells another
    pair of statements. This is the "draw k, redraw if there is none" rule with a
    limit on the redraws: the limit sets how often a pair goes by without a question, which
    each task fits to the released gaps between questions. (Computed in closed form: the
    draws hit with probability 1 - (1 - p)^tries, p the weight share of the ks that have
    options, and the first hit falls on such a k in proportion to its weight.)
    """
    have = [k for k, found in enumerate(options) if found]
    if not have:
        return None
    hit = sum(weights[k] for k in have)
    if rng.random() >= 1 - (1 - hit / sum(weights)) ** tries:
        return None
    k = have[bisect(list(accumulate(weights[k] for k in have)), rng.random() * hit)]
    return _pick(rng, options[k])


# =========================================================================================
# Solver: statement text -> event
# =========================================================================================


@dataclass(frozen=True)
class Event:
    """One statement as a solver reads it."""

    line_id: int
    kind: str  # MOVE_KIND, GET_KIND, DROP_KIND or GIVE_KIND
    actor: str
    obj: str | None = None
    location: str | None = None  # moves
    receiver: str | None = None  # gives


_NAME = r"[A-Z][a-z]+"
_GET_RE = re.compile(
    rf"^(?P<actor>{_NAME}) (?:picked up|grabbed|got|took) the (?P<obj>[a-z]+)(?: there)?\.$")
_DROP_RE = re.compile(
    rf"^(?P<actor>{_NAME}) (?:dropped|put down|left|discarded) the (?P<obj>[a-z]+)(?: there)?\.$")
_GIVE_RE = re.compile(
    rf"^(?P<actor>{_NAME}) (?:gave|handed|passed) the (?P<obj>[a-z]+) to (?P<receiver>{_NAME})\.$")


def parse_event(line_id: int, text: str) -> Event:
    """Read one statement of the object world.

    >>> parse_event(3, "Mary put down the milk there.")
    Event(line_id=3, kind='drop', actor='Mary', obj='milk', location=None, receiver=None)
    """
    if m := MOVE_RE.match(text):
        return Event(line_id, MOVE_KIND, m["actor"], location=m["location"])
    if m := _GET_RE.match(text):
        return Event(line_id, GET_KIND, m["actor"], m["obj"])
    if m := _DROP_RE.match(text):
        return Event(line_id, DROP_KIND, m["actor"], m["obj"])
    if m := _GIVE_RE.match(text):
        if m["actor"] == m["receiver"]:
            raise ValueError(f"line {line_id}: an actor gives to themselves: {text!r}")
        return Event(line_id, GIVE_KIND, m["actor"], m["obj"], receiver=m["receiver"])
    raise ValueError(f"line {line_id}: not a move, get, drop or give: {text!r}")


def parse_events(statements: list[tuple[int, str]]) -> list[Event]:
    return [parse_event(line_id, text) for line_id, text in statements]


def holdings(events: list[Event]) -> dict[str, list[str]]:
    """Who holds what after `events`, each list in acquisition order.

    A drop or give of an object its actor does not hold (by the text) is an error: the
    released data has none, so such text is not bAbI.
    """
    held: dict[str, list[str]] = {}
    for e in events:
        if e.kind == GET_KIND:
            for other, objs in held.items():
                if e.obj in objs:
                    raise ValueError(f"line {e.line_id}: {e.actor} gets the {e.obj} "
                                     f"while {other} holds it")
            held.setdefault(e.actor, []).append(e.obj)
        elif e.kind in (DROP_KIND, GIVE_KIND):
            objs = held.get(e.actor, [])
            if e.obj not in objs:
                raise ValueError(f"line {e.line_id}: {e.actor} {e.kind}s the {e.obj} "
                                 f"without holding it")
            objs.remove(e.obj)
            if e.kind == GIVE_KIND:
                held.setdefault(e.receiver, []).append(e.obj)
    return held
