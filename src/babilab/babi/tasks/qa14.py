"""qa14 time-reasoning: where was an actor before a place, across time slots (Weston et al. 2015, task 14).

World: actors Bill, Fred, Julie, Mary, the locations of qa10/qa14, and four time slots
yesterday < this morning < this afternoon < this evening. Each actor has a timeline: one
move per slot for a prefix of the slots (yesterday first), each to a place other than the
slot before's (a place may come back two slots later). Every statement is one timeline
move with its time phrase first (capitalised) or last, 50/50.

Story: 10, 12 or 14 statements, the first question after 2, 4 or 6 of them, then one every
2 statements (5 questions). Statements are not told in chronological order: the next one
is drawn from all untold moves, preferring each actor's earliest untold slot.

Question `Where was A before the L?`: the L is A's latest told visit to L (by time slot, so
"before the school" after "this morning ... school" and "this evening ... school" means
before this evening), and the answer is A's place in the slot before it, which must be told.
Every released question follows this rule, visits to the same place twice included.
Supporting ids: [move to L, move in the slot before].
"""

from __future__ import annotations

import random
import re

from ..story import Story
from ..vocab import ACTORS_QA10, LOCATIONS_QA10, MOVE, TIMES, sentence
from . import Solution
from ._places import NAME, PLACE, VERB
from .common import StoryBuilder, weighted

STORY_LENGTHS = (10, 12, 14)
LENGTH_WEIGHTS = (25, 65, 10)  # released: 25% / 65% / 10%
# Three actors (never with 14 statements, which needs 4 timelines of up to 4) in 7% of all
# stories: 7 / (25 + 65) of the stories short enough.
P_THREE_ACTORS = 0.078
# Timelines grow one slot at a time; an actor with 1, 2 or 3 moves is picked with these
# weights. Mild preference for long timelines, fitted to the released time-phrase shares:
# yesterday 33.5%, this morning 30%, this afternoon 23%, this evening 13.5%.
GROW_WEIGHTS = (1.0, 1.3, 1.5)
# The next statement is a move `d` slots after its actor's earliest untold one with weight
# OUT_OF_ORDER ** d: mostly chronological per actor, but "yesterday" is sometimes told
# after "this afternoon".
OUT_OF_ORDER = 0.5
# Which askable question comes: each is drawn with weight QUESTION_RECENCY[k], k the number
# of statements after its newer support (QUESTION_RECENCY_TAIL beyond the table). The
# maximum-likelihood weights on the released questions, given what was askable there, are
# about even up to 5 back, with 4 back at half weight and rarely farther; from those, a few
# rounds of "generate, rescale by released / generated" fit the released recency table
# (34.8, 17.6, 24.1, 10.2, 6.5, 6.1 % for k = 0..5). (The time slots asked need no weights
# of their own: the released shares 58 / 28 / 14 % come out as they are.)
QUESTION_RECENCY = (1.0, 0.8, 1.05, 0.8, 0.4, 1.0, 0.08)
QUESTION_RECENCY_TAIL = 0.01


def _timelines(rng: random.Random, n_statements: int) -> dict[str, list[str]]:
    """actor -> places for slots 0..len-1, with n_statements moves in all."""
    n_actors = 3 if n_statements <= 12 and rng.random() < P_THREE_ACTORS else 4
    actors = rng.sample(ACTORS_QA10, n_actors)
    lengths = dict.fromkeys(actors, 1)
    for _ in range(n_statements - n_actors):
        growable = [a for a in actors if lengths[a] < len(TIMES)]
        lengths[weighted(rng, growable, [GROW_WEIGHTS[lengths[a] - 1] for a in growable])] += 1
    timelines = {}
    for actor in actors:
        places = [rng.choice(LOCATIONS_QA10)]
        for _ in range(lengths[actor] - 1):
            places.append(rng.choice([loc for loc in LOCATIONS_QA10 if loc != places[-1]]))
        timelines[actor] = places
    return timelines


def _say(rng: random.Random, actor: str, place: str, slot: int) -> str:
    template = rng.choice(MOVE)
    template = "{t} " + template if rng.random() < 0.5 else template + " {t}"
    return sentence(template, a=actor, l=place, t=TIMES[slot])


def _askable(told: dict[str, dict[int, int]], timelines: dict[str, list[str]],
             ) -> list[tuple[str, int]]:
    """(actor, slot s) whose moves in s - 1 and s are told and whose told moves after s
    never go back to the place of s (so s is the latest told visit there)."""
    out = []
    for actor, slots in told.items():
        places = timelines[actor]
        for s in slots:
            latest_visit = all(places[t] != places[s] for t in slots if t > s)
            if s - 1 in slots and latest_visit:
                out.append((actor, s))
    return out


def _question_weight(story: StoryBuilder, supports: tuple[int, int]) -> float:
    k = story.statements_back(max(supports))
    return QUESTION_RECENCY[k] if k < len(QUESTION_RECENCY) else QUESTION_RECENCY_TAIL


def _try_story(rng: random.Random) -> Story | None:
    """One story, or None in the rare dead end where no question can be asked."""
    n_statements = weighted(rng, STORY_LENGTHS, LENGTH_WEIGHTS)
    first_question = n_statements - 8  # then every 2 statements: 5 questions in all
    timelines = _timelines(rng, n_statements)
    untold = {a: list(range(len(places))) for a, places in timelines.items()}  # ascending
    told: dict[str, dict[int, int]] = {a: {} for a in timelines}  # actor -> slot -> line id
    story = StoryBuilder("qa14")
    for n_told in range(1, n_statements + 1):
        options = [(a, s) for a, slots in untold.items() for s in slots]
        to_question = first_question - n_told + 1
        if to_question in (1, 2) and not _askable(told, timelines):
            # The first question must be answerable: its last statement completes a pair of
            # adjacent slots, and the one before it needs a neighbour to pair with.
            if to_question == 1:
                options = [(a, s) for a, s in options if s - 1 in told[a] or s + 1 in told[a]]
            else:
                options = [(a, s) for a, s in options if len(timelines[a]) > 1]
            if not options:
                return None
        weights = [OUT_OF_ORDER ** (s - untold[a][0]) for a, s in options]
        actor, slot = weighted(rng, options, weights)
        untold[actor].remove(slot)
        told[actor][slot] = story.say(_say(rng, actor, timelines[actor][slot], slot))

        if n_told >= first_question and (n_told - first_question) % 2 == 0:
            askable = _askable(told, timelines)
            if not askable:
                return None
            supports = [(told[a][s], told[a][s - 1]) for a, s in askable]
            (actor, s), ids = weighted(rng, list(zip(askable, supports, strict=True)),
                                       [_question_weight(story, ids) for ids in supports])
            places = timelines[actor]
            story.ask(f"Where was {actor} before the {places[s]}?", places[s - 1], ids)
    return story.build()


def generate_story(rng: random.Random) -> Story:
    while True:  # a dead end (nothing askable at a question) is rare; draw again
        story = _try_story(rng)
        if story is not None:
            return story


# --- solver: re-reads the text; knows nothing of the generator ---

_TIME = "(?P<time>yesterday|this morning|this afternoon|this evening)"
_TIME_FIRST = "(?P<time>Yesterday|This morning|This afternoon|This evening)"  # capitalised
_TIME_FIRST_RE = re.compile(rf"^{_TIME_FIRST} (?P<actor>{NAME}) {VERB} {PLACE}\.$")
_TIME_LAST_RE = re.compile(rf"^(?P<actor>{NAME}) {VERB} {PLACE} {_TIME}\.$")
_QUESTION_RE = re.compile(rf"^Where was (?P<actor>{NAME}) before {PLACE}\?$")


def _parse(text: str) -> tuple[str, str, int]:
    """'Yesterday Mary went to the school.' -> ("Mary", "school", 0)"""
    m = _TIME_FIRST_RE.match(text) or _TIME_LAST_RE.match(text)
    if m is None:
        raise ValueError(f"not a qa14 statement: {text!r}")
    return m["actor"], m["location"], TIMES.index(m["time"].lower())


def solve(statements: list[tuple[int, str]], question: str) -> Solution:
    """A's place in the slot just before A's latest told move to L (latest by time slot).

    Supports are [move to L, move in the slot before]. Raises ValueError when that slot's
    move is not told.
    """
    q = _QUESTION_RE.match(question)
    if not q:
        raise ValueError(f"not a qa14 question: {question!r}")
    moves: dict[int, tuple[str, int]] = {}  # slot -> (place, line id), for the asked actor
    for line_id, text in statements:
        actor, place, slot = _parse(text)
        if actor != q["actor"]:
            continue
        if slot in moves:
            raise ValueError(f"{actor} has two moves {TIMES[slot]}: {text!r}")
        moves[slot] = (place, line_id)
    visits = [slot for slot, (place, _) in moves.items() if place == q["location"]]
    if not visits:
        raise ValueError(f"{q['actor']} never went to the {q['location']} before {question!r}")
    latest = max(visits)
    if latest - 1 not in moves:
        raise ValueError(f"{question!r}: the slot before {q['actor']}'s latest visit is not told")
    before, before_id = moves[latest - 1]
    return Solution(before, ((moves[latest][1], before_id),))
