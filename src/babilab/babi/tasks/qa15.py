"""qa15 basic-deduction: what someone fears, from their species' fear (as in the released data).

Story: 4 fear statements ("Wolves are afraid of mice.", one per animal, never of itself, the
feared animals drawn with repetition), 4 membership statements ("Emily is a cat.", animals
drawn with replacement), then 4 questions ("What is emily afraid of?", lower-cased names
drawn with replacement). A membership statement always comes after its animal's fear.
"""

from __future__ import annotations

import random
import re

from ..story import Story
from ..vocab import ANIMALS_QA15, NAMES_QA15
from . import Solution
from .common import StoryBuilder

ANIMALS = tuple(ANIMALS_QA15)  # singulars, in the spec's order
SINGULAR = {plural: singular for singular, plural in ANIMALS_QA15.items()}

# Statement order: each step says one of the statements allowed so far (an unsaid fear, or a
# membership whose fear is said), a membership weighted 1.3 to a fear's 1. The released data
# has FFFFIIII as its most common ordering at 9%, and about a quarter of its (test) stories have
# a membership second; weight 1 gives FFFFIIII 13%, weight 1.3 gives 9% (a close second to
# FFFIFIII at 11%) and a membership second in 24%.
MEMBERSHIP_WEIGHT = 1.3


def _plural_sentence(animal: str, feared: str) -> str:
    plural = ANIMALS_QA15[animal]
    return f"{plural[0].upper()}{plural[1:]} are afraid of {ANIMALS_QA15[feared]}."


def generate_story(rng: random.Random) -> Story:
    fears = {a: rng.choice([b for b in ANIMALS if b != a]) for a in ANIMALS}
    kind = {name: rng.choice(ANIMALS) for name in NAMES_QA15}

    story = StoryBuilder("qa15")
    fear_id: dict[str, int] = {}
    member_id: dict[str, int] = {}
    unsaid_fears = list(ANIMALS)
    unsaid_members = list(NAMES_QA15)
    while unsaid_fears or unsaid_members:
        ready = [n for n in unsaid_members if kind[n] in fear_id]
        options = [("fear", a) for a in unsaid_fears] + [("member", n) for n in ready]
        weights = [1.0] * len(unsaid_fears) + [MEMBERSHIP_WEIGHT] * len(ready)
        what, who = rng.choices(options, weights=weights)[0]
        if what == "fear":
            unsaid_fears.remove(who)
            fear_id[who] = story.say(_plural_sentence(who, fears[who]))
        else:
            unsaid_members.remove(who)
            member_id[who] = story.say(f"{who} is a {kind[who]}.")

    for _ in range(4):
        name = rng.choice(NAMES_QA15)
        story.ask(f"What is {name.lower()} afraid of?", fears[kind[name]],
                  [member_id[name], fear_id[kind[name]]])
    return story.build()


# --- solver ---

_plurals = "|".join(ANIMALS_QA15.values())
_FEAR_RE = re.compile(rf"^(?P<animal>{_plurals}) are afraid of (?P<feared>{_plurals})\.$",
                      re.IGNORECASE)
_MEMBER_RE = re.compile(rf"^(?P<name>[A-Z][a-z]+) is an? (?P<animal>{'|'.join(ANIMALS)})\.$")
_QUESTION_RE = re.compile(r"^What is (?P<name>[A-Za-z]+) afraid of\?$")


def solve(statements: list[tuple[int, str]], question: str) -> Solution:
    q = _QUESTION_RE.match(question)
    if q is None:
        raise ValueError(f"not a qa15 question: {question!r}")
    name = q["name"].lower()  # the data lower-cases names in questions only
    member: tuple[int, str] | None = None  # (id, animal) of the name's latest membership
    fear: dict[str, tuple[int, str]] = {}  # animal -> (id, feared animal) of its latest fear
    for line_id, text in statements:
        if m := _FEAR_RE.match(text):
            fear[SINGULAR[m["animal"].lower()]] = (line_id, SINGULAR[m["feared"].lower()])
        elif m := _MEMBER_RE.match(text):
            if m["name"].lower() == name:
                member = (line_id, m["animal"])
        else:
            raise ValueError(f"not a qa15 statement: {text!r}")
    if member is None:
        raise ValueError(f"{question!r}: no statement says what {q['name']} is")
    member_line, animal = member
    if animal not in fear:
        raise ValueError(f"{question!r}: no statement says what {animal} fears")
    fear_line, feared = fear[animal]
    return Solution(feared, ((member_line, fear_line),))
