"""Entities and sentence templates of the released bAbI en-10k data (bAbI v1.2, arXiv 1502.05698).

Only words and templates live here; the rules that use them live in each task's module.
Lists are in the spec's order, which the generators rely on for reproducible draws.
"""

TASK_NAMES = {
    "qa1": "single-supporting-fact",
    "qa2": "two-supporting-facts",
    "qa3": "three-supporting-facts",
    "qa4": "two-arg-relations",
    "qa5": "three-arg-relations",
    "qa6": "yes-no-questions",
    "qa7": "counting",
    "qa8": "lists-sets",
    "qa9": "simple-negation",
    "qa10": "indefinite-knowledge",
    "qa11": "basic-coreference",
    "qa12": "conjunction",
    "qa13": "compound-coreference",
    "qa14": "time-reasoning",
    "qa15": "basic-deduction",
    "qa16": "basic-induction",
    "qa17": "positional-reasoning",
    "qa18": "size-reasoning",
    "qa19": "path-finding",
    "qa20": "agents-motivations",
}

# Tasks whose question lines put a space before the tab ("Where is Mary? \tbathroom\t1").
SPACE_BEFORE_TAB = frozenset({"qa1", "qa2", "qa3"} | {f"qa{n}" for n in range(5, 15)})

# --- the shared world ("world_basic") ---
ACTORS = ("John", "Mary", "Sandra", "Daniel")
GENDER = {"John": "he", "Daniel": "he", "Mary": "she", "Sandra": "she"}
ACTORS_QA5 = ("Bill", "Fred", "Jeff", "Mary")
ACTORS_QA10 = ("Bill", "Fred", "Julie", "Mary")  # also qa14
LOCATIONS = ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office")
LOCATIONS_QA10 = ("bedroom", "cinema", "kitchen", "office", "park", "school")  # also qa14
OBJECTS = ("apple", "football", "milk")

# "{a}" actor, "{l}" location, "{o}" object, "{b}" second actor. No final period.
MOVE = ("{a} went to the {l}", "{a} journeyed to the {l}", "{a} travelled to the {l}",
        "{a} moved to the {l}", "{a} went back to the {l}")
GET = ("{a} picked up the {o}", "{a} grabbed the {o}", "{a} got the {o}", "{a} took the {o}")
DROP = ("{a} dropped the {o}", "{a} put down the {o}", "{a} left the {o}", "{a} discarded the {o}")
GIVE = ("{a} gave the {o} to {b}", "{a} handed the {o} to {b}", "{a} passed the {o} to {b}")
MOVE_VERBS = ("went to", "journeyed to", "travelled to", "moved to", "went back to")

ADVERBS = ("After that", "Afterwards", "Following that", "Then")  # qa11, qa13

# --- qa4, qa19 ---
DIRECTIONS = ("north", "south", "east", "west")
OPPOSITE = {"north": "south", "south": "north", "east": "west", "west": "east"}

# --- qa14 ---
TIMES = ("yesterday", "this morning", "this afternoon", "this evening")  # chronological

# --- qa15 ---
ANIMALS_QA15 = {"mouse": "mice", "sheep": "sheep", "wolf": "wolves", "cat": "cats"}
NAMES_QA15 = ("Gertrude", "Winona", "Jessica", "Emily")

# --- qa16 ---
NAMES_QA16 = ("Lily", "Bernhard", "Greg", "Julius", "Brian")
ANIMALS_QA16 = ("swan", "lion", "frog", "rhino")
COLORS = ("gray", "white", "yellow", "green")

# --- qa17 ---
SHAPES = ("red square", "blue square", "yellow square", "pink rectangle", "triangle", "red sphere")
RELATIONS = ("above", "below", "to the left of", "to the right of")

# --- qa18 ---
SIZED_OBJECTS = ("box", "box of chocolates", "chest", "chocolate", "container", "suitcase")

# --- qa20 ---
NAMES_QA20 = ("Jason", "Antoine", "Sumit", "Yann")
MOTIVATIONS = {  # motivation -> (destination, object)
    "hungry": ("kitchen", "apple"),
    "thirsty": ("kitchen", "milk"),
    "bored": ("garden", "football"),
    "tired": ("bedroom", "pajamas"),
}
OBJECTS_QA20 = ("apple", "milk", "football", "pajamas")


def sentence(template: str, **slots: str) -> str:
    """Fill a template, capitalise the first letter and end with a period.

    >>> sentence(MOVE[0], a="Mary", l="garden")
    'Mary went to the garden.'
    """
    text = template.format(**slots)
    return text[0].upper() + text[1:] + "."
