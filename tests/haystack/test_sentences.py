"""Sentence splitting: known answers for the rules the module doc promises."""

from babilab.haystack import split_sentences


def test_splits_at_terminal_punctuation_before_a_capital():
    assert split_sentences("It rained. The river rose! Did it? Yes.") == [
        "It rained.", "The river rose!", "Did it?", "Yes."]


def test_keeps_titles_initials_and_dialogue_together():
    text = 'Mr. Knightley met Dr. Perry and G. K. Chesterton. "Oh!" said she, "is it you?"'
    assert split_sentences(text) == [
        "Mr. Knightley met Dr. Perry and G. K. Chesterton.",
        '"Oh!" said she, "is it you?"']


def test_closing_quotes_stay_with_their_sentence():
    assert split_sentences('"Go home." Then he left. (It was late.) Next.') == [
        '"Go home."', "Then he left.", "(It was late.)", "Next."]


def test_blank_lines_end_sentences_and_wraps_are_collapsed():
    text = "CHAPTER I\n\nEmma Woodhouse, handsome,\nclever, and rich, had lived\n  long.\n"
    assert split_sentences(text) == ["CHAPTER I",
                                     "Emma Woodhouse, handsome, clever, and rich, had lived long."]


def test_keep_newlines_keeps_the_raw_text():
    text = "Emma Woodhouse, handsome,\nclever. She was\nrich."
    assert split_sentences(text, keep_newlines=True) == [
        "Emma Woodhouse, handsome,\nclever.", "She was\nrich."]


def test_no_empty_sentences():
    assert split_sentences("\n\n  \n\n") == []
    assert split_sentences("word") == ["word"]
