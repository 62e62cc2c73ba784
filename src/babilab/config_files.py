"""Reading option files (recipes, run files, suite configs): one YAML reader and one way to
turn a validation error into the one line the CLI prints."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import BabilabError


def read_yaml(path: Path | str) -> dict[str, Any]:
    """A YAML file holding a mapping of option: value; anything else is one BabilabError."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise BabilabError(f"{path}: cannot read ({e.strerror}); check the path") from None
    except yaml.YAMLError as e:
        raise BabilabError(f"{path}: not valid YAML ({str(e).splitlines()[0]}); fix its "
                           "syntax") from None
    if not isinstance(data, dict):
        raise BabilabError(f"{path}: expected a mapping of option: value")
    return data


def config_error(e: Exception, where: str = "", options: Iterable[str] | None = None) -> BabilabError:
    """A pydantic validation error (or a validator's ValueError) as one line:
    `where` `key: message`. An unknown key names the known ones when `options` is given.

    >>> from pydantic import BaseModel, ConfigDict
    >>> class C(BaseModel):
    ...     model_config = ConfigDict(extra="forbid")
    ...     lr: float = 1.0
    >>> try:
    ...     C(lr="fast")
    ... except ValueError as e:
    ...     print(config_error(e, "recipe.yaml: "))
    recipe.yaml: lr: Input should be a valid number, unable to parse string as a number
    >>> try:
    ...     C(rl=1)
    ... except ValueError as e:
    ...     print(config_error(e, options=C.model_fields))
    rl: unknown option; the options are lr
    """
    errors = getattr(e, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = ".".join(str(x) for x in first.get("loc", ())) or "config"
        msg = str(first.get("msg", e)).removeprefix("Value error, ")
        if first.get("type") == "extra_forbidden":  # a typo: say what is allowed
            msg = (f"unknown option; the options are {', '.join(options)}" if options is not None
                   else "unknown key; remove it or fix its spelling")
        return BabilabError(f"{where}{loc}: {msg}")
    return BabilabError(f"{where}{e}")
