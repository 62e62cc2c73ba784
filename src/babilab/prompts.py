"""Prompts for the 20 tasks, in BABILong's structure (github.com/booydar/babilong, babilong/prompts.py).

    <instruction>

    <examples>

    <post-prompt: the answer-format rule>

    <context>
    ...facts hidden in background text...
    </context>

    Question: ...

Each part can be switched off; a switched-off part leaves no blank lines behind. With the
chat template on, the whole text is one user message (after an optional system message),
exactly as BABILong sends it. `PromptConfig.name` is BABILong's run-configuration name
("instruction_yes_examples_no_..."), recorded with every prediction.

The wording is babilab's own; examples use names and places outside the bAbI vocabulary so
they cannot leak answers. `PromptConfig.prompts` swaps in the text of a prompts file
(prompt_files.py: BABILong's own prompt files, or any wording), formatted as BABILong does;
`PromptConfig.key` then names the file's digest too, so predictions made with two files are
never stored as one. This module knows nothing about backends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import BabilabError

if TYPE_CHECKING:
    from .prompt_files import PromptFile


@dataclass(frozen=True)
class Example:
    facts: str
    question: str
    answer: str


@dataclass(frozen=True)
class TaskPrompt:
    instruction: str
    examples: tuple[Example, ...]
    post_prompt: str


_INTRO = ("I will give you a context with facts about {topic} hidden among unrelated text, and a "
          "question. Answer the question using only the facts.")
_TERSE = "Write nothing else after the answer."

TASK_PROMPTS: dict[str, TaskPrompt] = {
    "qa1": TaskPrompt(
        _INTRO.format(topic="where people are") + " People move around, so the answer is the "
        "last place a person is said to have gone.",
        (Example("Charlie went to the garage. Judith walked to the attic. Charlie came back to the "
                 "porch.", "Where is Charlie?", "The most recent location of Charlie is porch."),
         Example("Alan travelled to the cellar. Alan ran to the balcony.", "Where is Alan?",
                 "The most recent location of Alan is balcony.")),
        "Answer with one sentence: The most recent location of <person> is <location>. " + _TERSE,
    ),
    "qa2": TaskPrompt(
        _INTRO.format(topic="people, places and things") + " A thing someone carries is where "
        "that person is; a thing that was put down stays where it was put down.",
        (Example("Judith took the umbrella. Judith went to the attic. Alan moved to the porch.",
                 "Where is the umbrella?", "The umbrella is in the attic."),
         Example("Charlie picked up the lamp there. Charlie walked to the garage. Charlie dropped "
                 "the lamp. Charlie ran to the cellar.", "Where is the lamp?",
                 "The lamp is in the garage.")),
        "Answer with one sentence: The <thing> is in <location>. " + _TERSE,
    ),
    "qa3": TaskPrompt(
        _INTRO.format(topic="people, places and things") + " A thing someone carries moves with "
        "that person. The question asks where a thing was just before it arrived somewhere.",
        (Example("Alan grabbed the lamp. Alan went to the attic. Alan went to the porch.",
                 "Where was the lamp before the porch?",
                 "Before the porch the lamp was in the attic."),
         Example("Judith went to the cellar. Judith got the umbrella there. Judith moved to the "
                 "garage. Judith left the umbrella.", "Where was the umbrella before the garage?",
                 "Before the garage the umbrella was in the cellar.")),
        "Answer with one sentence: Before the <location 1> the <thing> was in the <location 2>. "
        + _TERSE,
    ),
    "qa4": TaskPrompt(
        _INTRO.format(topic="how places lie relative to each other"),
        (Example("The porch is west of the attic. The garage is east of the attic.",
                 "What is west of the attic?", "porch"),
         Example("The cellar is north of the lobby. The lobby is north of the den.",
                 "What is the lobby south of?", "cellar")),
        "Answer with one word, a location. " + _TERSE,
    ),
    "qa5": TaskPrompt(
        _INTRO.format(topic="people handing things to each other"),
        (Example("Alan took the lamp. Alan gave the lamp to Judith. Judith went to the attic.",
                 "Who gave the lamp?", "Alan"),
         Example("Charlie handed the umbrella to Alan.", "What did Charlie give to Alan?", "umbrella"),
         Example("Judith passed the kite to Charlie.", "Who received the kite?", "Charlie")),
        "Answer with one word, a person or a thing. " + _TERSE,
    ),
    "qa6": TaskPrompt(
        _INTRO.format(topic="where people are"),
        (Example("Charlie went to the garage. Charlie moved to the attic.",
                 "Is Charlie in the garage?", "no"),
         Example("Judith travelled to the porch.", "Is Judith in the porch?", "yes")),
        "Answer yes or no. " + _TERSE,
    ),
    "qa7": TaskPrompt(
        _INTRO.format(topic="people carrying things"),
        (Example("Alan took the lamp. Alan got the kite there.", "How many objects is Alan carrying?",
                 "two"),
         Example("Judith picked up the umbrella. Judith dropped the umbrella.",
                 "How many objects is Judith carrying?", "none"),
         Example("Charlie grabbed the lamp. Charlie gave the lamp to Alan.",
                 "How many objects is Alan carrying?", "one")),
        "Answer with a number written as a word (one, two, three) or none. " + _TERSE,
    ),
    "qa8": TaskPrompt(
        _INTRO.format(topic="people carrying things"),
        (Example("Alan took the lamp. Alan got the kite there.", "What is Alan carrying?",
                 "lamp,kite"),
         Example("Judith picked up the umbrella. Judith dropped the umbrella.",
                 "What is Judith carrying?", "nothing"),
         Example("Charlie grabbed the lamp.", "What is Charlie carrying?", "lamp")),
        "Answer with the things, comma-separated without spaces, or nothing. " + _TERSE,
    ),
    "qa9": TaskPrompt(
        _INTRO.format(topic="where people are and are not"),
        (Example("Charlie is in the garage. Charlie is no longer in the garage.",
                 "Is Charlie in the garage?", "no"),
         Example("Judith went to the porch.", "Is Judith in the porch?", "yes")),
        "Answer yes or no. " + _TERSE,
    ),
    "qa10": TaskPrompt(
        _INTRO.format(topic="where people might be"),
        (Example("Alan is either in the attic or the porch.", "Is Alan in the attic?", "maybe"),
         Example("Judith went to the garage.", "Is Judith in the cellar?", "no"),
         Example("Charlie is in the lobby.", "Is Charlie in the lobby?", "yes")),
        "Answer yes, no or maybe. " + _TERSE,
    ),
    "qa11": TaskPrompt(
        _INTRO.format(topic="where people are") + " 'He' or 'she' means the person named just "
        "before.",
        (Example("Charlie went to the garage. Afterwards he moved to the attic.",
                 "Where is Charlie?", "attic"),
         Example("Judith travelled to the porch. Then she went to the lobby.", "Where is Judith?",
                 "lobby"),
         Example("Alan moved to the cellar. After that he went back to the den.", "Where is Alan?",
                 "den")),
        "Answer with one word, a location. " + _TERSE,
    ),
    "qa12": TaskPrompt(
        _INTRO.format(topic="where people are"),
        (Example("Charlie and Judith went to the garage. Judith and Alan moved to the attic.",
                 "Where is Charlie?", "garage"),
         Example("Alan and Charlie travelled to the porch.", "Where is Alan?", "porch"),
         Example("Judith and Alan went to the den. Alan and Charlie went to the lobby.",
                 "Where is Alan?", "lobby")),
        "Answer with one word, a location. " + _TERSE,
    ),
    "qa13": TaskPrompt(
        _INTRO.format(topic="where people are") + " 'They' means the people named just before.",
        (Example("Charlie and Judith went to the garage. Then they moved to the attic.",
                 "Where is Judith?", "attic"),
         Example("Alan and Charlie travelled to the porch. Afterwards they went to the lobby.",
                 "Where is Alan?", "lobby"),
         Example("Judith and Alan went to the den. Following that they went to the cellar.",
                 "Where is Judith?", "cellar")),
        "Answer with one word, a location. " + _TERSE,
    ),
    "qa14": TaskPrompt(
        _INTRO.format(topic="where people went at different times of the day") + " The day goes "
        "yesterday, this morning, this afternoon, this evening; facts are not told in that order.",
        (Example("This morning Charlie went to the garage. Yesterday Charlie went to the attic.",
                 "Where was Charlie before the garage?", "attic"),
         Example("Judith went to the porch this afternoon. This morning Judith moved to the den.",
                 "Where was Judith before the porch?", "den"),
         Example("Yesterday Alan went to the lobby. Alan travelled to the cellar this morning.",
                 "Where was Alan before the cellar?", "lobby")),
        "Answer with one word, a location. " + _TERSE,
    ),
    "qa15": TaskPrompt(
        _INTRO.format(topic="animals and what they fear") + " What a kind of animal fears, every "
        "animal of that kind fears.",
        (Example("Foxes are afraid of bears. Rosa is a fox.", "What is rosa afraid of?", "bear"),
         Example("Owls are afraid of hawks. Hawks are afraid of eagles. Tomas is a hawk.",
                 "What is tomas afraid of?", "eagle"),
         Example("Geese are afraid of dogs. Ines is a goose.", "What is ines afraid of?", "dog")),
        "Answer with one word, an animal in the singular. " + _TERSE,
    ),
    "qa16": TaskPrompt(
        _INTRO.format(topic="animals and their colors") + " Animals of the same kind usually "
        "have the same color.",
        (Example("Rosa is a fox. Rosa is red. Tomas is a fox.", "What color is Tomas?", "red"),
         Example("Ines is an owl. Ines is brown. Paul is an owl.", "What color is Paul?", "brown"),
         Example("Ada is a crow. Ada is black. Ben is a crow.", "What color is Ben?", "black")),
        "Answer with one word, a color. " + _TERSE,
    ),
    "qa17": TaskPrompt(
        _INTRO.format(topic="where shapes are placed relative to each other"),
        (Example("The green circle is above the blue star. The blue star is to the left of the "
                 "orange oval.", "Is the green circle above the orange oval?", "yes"),
         Example("The purple cube is below the white cone. The white cone is below the grey disc.",
                 "Is the grey disc below the purple cube?", "no"),
         Example("The tan box is to the right of the gold ring. The gold ring is above the silver "
                 "cup.", "Is the silver cup to the right of the tan box?", "no")),
        "Answer yes or no. " + _TERSE,
    ),
    "qa18": TaskPrompt(
        _INTRO.format(topic="the sizes of things"),
        (Example("The bag fits inside the trunk. The purse fits inside the bag.",
                 "Does the purse fit in the trunk?", "yes"),
         Example("The crate is bigger than the basket. The basket is bigger than the cup.",
                 "Is the cup bigger than the crate?", "no"),
         Example("The drawer fits inside the wardrobe. The wardrobe is bigger than the drawer.",
                 "Is the wardrobe bigger than the drawer?", "yes")),
        "Answer yes or no. " + _TERSE,
    ),
    "qa19": TaskPrompt(
        _INTRO.format(topic="how places are laid out"),
        (Example("The attic is north of the porch. The garage is east of the attic.",
                 "How do you go from the porch to the garage?", "n,e"),
         Example("The den is south of the lobby. The cellar is west of the den.",
                 "How do you go from the lobby to the cellar?", "s,w"),
         Example("The porch is north of the yard. The roof is north of the porch.",
                 "How do you go from the yard to the roof?", "n,n")),
        "Answer with two letters separated by a comma, each one of n, s, e, w (north, south, "
        "east, west). " + _TERSE,
    ),
    "qa20": TaskPrompt(
        _INTRO.format(topic="what people want and do"),
        (Example("Rosa is sleepy. Rosa went to the dorm.", "Why did rosa go to the dorm?", "sleepy"),
         Example("Tomas is cold.", "Where will tomas go?", "fireplace"),
         Example("Ines is curious. Ines went to the library. Ines took the book there.",
                 "Why did ines get the book?", "curious")),
        "Answer with one word, a state of mind or a place. " + _TERSE,
    ),
}


@dataclass(frozen=True)
class PromptConfig:
    """Which prompt parts are on; `name` is BABILong's run-configuration name."""

    instruction: bool = True
    examples: bool = True
    post_prompt: bool = True
    chat_template: bool = True
    system_prompt: str | None = None  # text of an optional system message (chat only)
    prompts: PromptFile | None = None  # texts from a prompts file instead of babilab's own

    @property
    def key(self) -> str:
        """What predictions are stored under: the name, and with a prompts file its digest."""
        return self.name if self.prompts is None else f"{self.name}@prompts-{self.prompts.short}"

    def at_length(self, length: str) -> PromptConfig:
        """The configuration as sent at one length: a published run's prompt files may hold
        other texts at some lengths (prompt_files.py); the key stays the same."""
        return self if self.prompts is None else replace(self, prompts=self.prompts.at_length(length))

    @property
    def name(self) -> str:
        """`instruction_yes_examples_yes_post_prompt_yes_chat_template_yes_system_prompt_no`"""
        flags = (("instruction", self.instruction), ("examples", self.examples),
                 ("post_prompt", self.post_prompt), ("chat_template", self.chat_template),
                 ("system_prompt", self.system_prompt is not None))
        return "_".join(f"{key}_{'yes' if on else 'no'}" for key, on in flags)

    @classmethod
    def from_name(cls, name: str, system_prompt: str | None = None) -> PromptConfig:
        """Parse a run-configuration name (older names without the last keys are accepted)."""
        keys = ("instruction", "examples", "post_prompt", "chat_template", "system_prompt")
        found = dict(re.findall(r"(instruction|examples|post_prompt|chat_template|system_prompt)"
                                r"_(yes|no)", name))
        rebuilt = "_".join(f"{k}_{found[k]}" for k in keys if k in found)
        if not found or rebuilt != name:
            raise BabilabError(f"bad prompt configuration {name!r}; expected e.g. "
                               f"{cls().name!r}")
        if found.get("system_prompt") == "yes" and system_prompt is None:
            raise BabilabError(f"{name!r} asks for a system prompt; give its text too")
        return cls(
            instruction=found.get("instruction", "yes") == "yes",
            examples=found.get("examples", "yes") == "yes",
            post_prompt=found.get("post_prompt", "yes") == "yes",
            chat_template=found.get("chat_template", "no") == "yes",
            system_prompt=system_prompt if found.get("system_prompt") == "yes" else None,
        )


def format_examples(examples: tuple[Example, ...]) -> str:
    return "\n".join(
        f"<example>\n{e.facts} {e.question}\nAnswer: {e.answer}\n</example>" for e in examples
    )


def format_prompt(task: str, context: str, question: str, config: PromptConfig) -> str:
    """The whole prompt text (the user message when the chat template is on).

    >>> print(format_prompt("qa1", "Mary went to the garden.", "Where is Mary?",
    ...                     PromptConfig(False, False, False, False)))
    <context>
    Mary went to the garden.
    </context>
    <BLANKLINE>
    Question: Where is Mary?
    """
    if config.prompts is not None:  # a file's text, put together exactly as BABILong does
        return config.prompts.format(task, context, question, config)
    if task not in TASK_PROMPTS:
        raise BabilabError(f"no prompt for task {task!r}; tasks are qa1..qa20")
    prompt = TASK_PROMPTS[task]
    parts = [
        prompt.instruction if config.instruction else "",
        format_examples(prompt.examples) if config.examples else "",
        prompt.post_prompt if config.post_prompt else "",
        f"<context>\n{context.strip()}\n</context>\n\nQuestion: {question.strip()}",
    ]
    return "\n\n".join(p for p in parts if p)


def chat_messages(task: str, context: str, question: str, config: PromptConfig) -> list[dict]:
    """The prompt as chat messages: an optional system message, then one user message."""
    messages = [{"role": "system", "content": config.system_prompt}] if config.system_prompt else []
    messages.append({"role": "user", "content": format_prompt(task, context, question, config)})
    return messages
