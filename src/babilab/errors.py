"""The one exception type the CLI turns into a single error line and a non-zero exit."""


class BabilabError(ValueError):
    """Bad input or a broken file: the message says what is wrong and how to fix it."""
