"""qa4 two-arg-relations: what lies in a direction of a location (as in the released data).

Story: two statements and one question. Three locations lie on one line, P0 - P1 - P2, and
each statement relates the middle one to a neighbour. The question reads one statement either
verbatim ("What is west of the kitchen?") or inverted ("What is the kitchen east of?"); in
both forms the answer is that statement's subject. The story space is tiny, so stories repeat
(generate.py keeps the splits apart).
"""

from __future__ import annotations

import random
import re

from ..story import Story
from ..vocab import DIRECTIONS, LOCATIONS, OPPOSITE
from . import Solution
from ._logic import adjacency, neighbours
from .common import StoryBuilder

# In the released data 54% of stories word the two statements with opposite directions
# ("The hallway is east of the bathroom. The bedroom is west of the bathroom."): the shared
# middle location is the subject or the object of both. Otherwise they chain (same word).
OPPOSITE_WORDING = 0.54


def generate_story(rng: random.Random) -> Story:
    p0, p1, p2 = rng.sample(LOCATIONS, 3)
    d = rng.choice(DIRECTIONS)  # P1 is d of P0, P2 is d of P1
    back = OPPOSITE[d]
    # Facts are (subject, direction, object): "The subject is direction of the object."
    if rng.random() < OPPOSITE_WORDING:
        # Shared middle as subject of both, or as object of both.
        near, far = ((p1, d, p0), (p1, back, p2)) if rng.random() < 0.5 else \
            ((p0, back, p1), (p2, d, p1))
    else:
        near, far = ((p1, d, p0), (p2, d, p1)) if rng.random() < 0.5 else \
            ((p0, back, p1), (p1, back, p2))
    facts = [near, far]
    rng.shuffle(facts)

    story = StoryBuilder("qa4")
    ids = [story.say(adjacency(*fact)) for fact in facts]
    k = rng.randrange(2)
    subject, direction, obj = facts[k]
    if rng.random() < 0.5:
        question = f"What is {direction} of the {obj}?"
    else:
        question = f"What is the {obj} {OPPOSITE[direction]} of?"
    story.ask(question, subject, [ids[k]])
    return story.build()


# --- solver ---

_locations = "|".join(LOCATIONS)
_directions = "|".join(DIRECTIONS)
_WHAT_IS_DIR_OF = re.compile(
    rf"^What is (?P<direction>{_directions}) of the (?P<place>{_locations})\?$"
)
_WHAT_IS_PLACE_DIR_OF = re.compile(
    rf"^What is the (?P<place>{_locations}) (?P<direction>{_directions}) of\?$"
)


def solve(statements: list[tuple[int, str]], question: str) -> Solution:
    if m := _WHAT_IS_DIR_OF.match(question):
        # X is DIR of PLACE: from PLACE, going DIR reaches X.
        step = m["direction"]
    elif m := _WHAT_IS_PLACE_DIR_OF.match(question):
        # PLACE is DIR of X: from PLACE, going opposite(DIR) reaches X.
        step = OPPOSITE[m["direction"]]
    else:
        raise ValueError(f"not a qa4 question: {question!r}")
    graph = neighbours(statements, "qa4")
    found = [(there, line_id) for direction, there, line_id in graph.get(m["place"], [])
             if direction == step]
    answers = {there for there, _ in found}
    if len(answers) != 1:
        what = "nothing" if not answers else " and ".join(sorted(answers))
        raise ValueError(f"{question!r}: the statements give {what}")
    return Solution(answers.pop(), tuple((line_id,) for _, line_id in found))
