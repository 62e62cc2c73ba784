"""Prompt structure, configuration names, and that every example obeys its own rules."""

import pytest

from babilab.errors import BabilabError
from babilab.prompts import TASK_PROMPTS, PromptConfig, chat_messages, format_prompt
from babilab.scoring import TASK_LABELS


def test_every_task_has_a_prompt():
    assert set(TASK_PROMPTS) == set(TASK_LABELS)


def test_order_is_instruction_examples_rule_context_question():
    text = format_prompt("qa2", "  Mary got the milk there.  ", "Where is the milk? ", PromptConfig())
    p = TASK_PROMPTS["qa2"]
    positions = [text.index(p.instruction), text.index("<example>"), text.index(p.post_prompt),
                 text.index("<context>\nMary got the milk there.\n</context>"),
                 text.index("Question: Where is the milk?")]
    assert positions == sorted(positions)
    assert text.endswith("Question: Where is the milk?")


def test_switched_off_parts_leave_no_blank_lines():
    text = format_prompt("qa1", "facts", "Where is Mary?", PromptConfig(False, True, False))
    assert text.startswith("<example>") and "\n\n\n" not in text
    assert TASK_PROMPTS["qa1"].instruction not in text


@pytest.mark.parametrize("config", [
    PromptConfig(),
    PromptConfig(False, False, False, False),
    PromptConfig(True, False, True, True, system_prompt="You are careful."),
])
def test_config_name_round_trip(config):
    assert PromptConfig.from_name(config.name, system_prompt=config.system_prompt) == config


def test_known_config_name():
    assert PromptConfig().name == (
        "instruction_yes_examples_yes_post_prompt_yes_chat_template_yes_system_prompt_no")
    old = PromptConfig.from_name("instruction_no_examples_no_post_prompt_no")
    assert not old.instruction and not old.chat_template


@pytest.mark.parametrize("name", ["instruction_maybe", "examples_yes_instruction_yes", "", "chat"])
def test_bad_config_name(name):
    with pytest.raises(BabilabError, match="bad prompt configuration"):
        PromptConfig.from_name(name)


def test_system_prompt_message():
    msgs = chat_messages("qa1", "c", "Where is Mary?", PromptConfig(system_prompt="Be brief."))
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert [m["role"] for m in chat_messages("qa1", "c", "q", PromptConfig())] == ["user"]


def test_examples_use_no_babi_vocabulary():
    # out-of-vocabulary names and places, so an example can never hand over an answer
    from babilab.babi import vocab
    words = {w.lower() for w in (*vocab.ACTORS, *vocab.ACTORS_QA5, *vocab.ACTORS_QA10,
                                 *vocab.LOCATIONS, *vocab.LOCATIONS_QA10, *vocab.NAMES_QA15,
                                 *vocab.NAMES_QA16, *vocab.NAMES_QA20)}
    for task, prompt in TASK_PROMPTS.items():
        for example in prompt.examples:
            text = f"{example.facts} {example.question} {example.answer}".lower()
            found = {w for w in words if f" {w} " in f" {text.replace('.', ' ').replace('?', ' ')} "}
            assert not found, (task, found)
