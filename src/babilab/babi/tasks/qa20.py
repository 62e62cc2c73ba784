"""qa20 agents-motivations: where someone will go and why (as in the released data).

Each of the 4 actors gets a motivation (independently, so several may share one) and a
script: (1) "Yann is thirsty.", (2) a move to the motivation's place, (3) a get of its object
("Yann took the milk there."). The scripts are interleaved, each step a random actor with
steps left, and every statement is followed by a question about it:
    (1) "Where will yann go?"  (2) "Why did yann go to the kitchen?"  (3) "Why did yann get
    the milk?", with the name lower-cased and the "is <motivation>" statement as support.
A get fails, and is left out, when another actor already took that object: this is why only
stories with four different motivations (9%) reach 12 statements, as in the released data.
"""

from __future__ import annotations

import random
import re

from ..story import Story
from ..vocab import GET, MOTIVATIONS, MOVE, NAMES_QA20, sentence
from . import Solution
from .common import MOVE_RE, StoryBuilder

MOTIVATION_NAMES = tuple(MOTIVATIONS)


def generate_story(rng: random.Random) -> Story:
    motivation = {name: rng.choice(MOTIVATION_NAMES) for name in NAMES_QA20}
    step = dict.fromkeys(NAMES_QA20, 0)  # steps done so far
    busy = list(NAMES_QA20)  # actors with steps left
    taken: set[str] = set()

    story = StoryBuilder("qa20")
    reason_id: dict[str, int] = {}  # actor -> id of "<Name> is <motivation>."
    while busy:
        name = busy[int(rng.random() * len(busy))]
        step[name] += 1
        if step[name] == 3:
            busy.remove(name)
        why = motivation[name]
        place, thing = MOTIVATIONS[why]
        who = name.lower()
        if step[name] == 1:
            reason_id[name] = story.say(f"{name} is {why}.")
            story.ask(f"Where will {who} go?", place, [reason_id[name]])
        elif step[name] == 2:
            story.say(sentence(rng.choice(MOVE), a=name, l=place))
            story.ask(f"Why did {who} go to the {place}?", why, [reason_id[name]])
        elif thing not in taken:
            taken.add(thing)
            story.say(sentence(rng.choice(GET) + " there", a=name, o=thing))
            story.ask(f"Why did {who} get the {thing}?", why, [reason_id[name]])
    return story.build()


# --- solver ---

_motivations = "|".join(MOTIVATION_NAMES)
_REASON_RE = re.compile(rf"^(?P<name>[A-Z][a-z]+) is (?P<why>{_motivations})\.$")
_GET_RE = re.compile(r"^(?P<name>[A-Z][a-z]+) (?:picked up|grabbed|got|took) the (?P<thing>[a-z]+)"
                     r"(?: there)?\.$")
_WHERE_Q = re.compile(r"^Where will (?P<name>[A-Za-z]+) go\?$")
_WHY_GO_Q = re.compile(r"^Why did (?P<name>[A-Za-z]+) go to the (?P<place>[a-z]+)\?$")
_WHY_GET_Q = re.compile(r"^Why did (?P<name>[A-Za-z]+) get the (?P<thing>[a-z]+)\?$")


def solve(statements: list[tuple[int, str]], question: str) -> Solution:
    q = _WHERE_Q.match(question) or _WHY_GO_Q.match(question) or _WHY_GET_Q.match(question)
    if q is None:
        raise ValueError(f"not a qa20 question: {question!r}")
    name = q["name"].lower()  # the data lower-cases names in questions only
    reason: tuple[int, str] | None = None  # (id, motivation) of the actor's latest one
    for line_id, text in statements:
        if m := _REASON_RE.match(text):
            if m["name"].lower() == name:
                reason = (line_id, m["why"])
        elif not (MOVE_RE.match(text) or _GET_RE.match(text)):
            raise ValueError(f"not a qa20 statement: {text!r}")
    if reason is None:
        raise ValueError(f"{question!r}: no statement gives {q['name']} a motivation")
    line_id, why = reason
    place, thing = MOTIVATIONS[why]
    if "place" in q.groupdict() and q["place"] != place:
        raise ValueError(f"{question!r}: someone {why} goes to the {place}, not the {q['place']}")
    if "thing" in q.groupdict() and q["thing"] != thing:
        raise ValueError(f"{question!r}: someone {why} gets the {thing}, not the {q['thing']}")
    answer = place if q.re is _WHERE_Q else why
    return Solution(answer, ((line_id,),))
