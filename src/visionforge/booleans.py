"""The one reading of yes/no words in settings, CLI options and environment variables.

``key=true`` on the command line, ``retry_failed: yes`` in a YAML file and
``VISIONFORGE_AMP=1`` in the environment all go through :func:`parse_bool`, so every place
accepts the same words and rejects the same typos.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TRUE_WORDS", "FALSE_WORDS", "parse_bool", "is_true"]

TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y", "t"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "n", "f"})


def parse_bool(value: Any) -> bool:
    """``value`` (a bool or one of the yes/no words, any case) as a bool.

    Raises ``ValueError`` naming the accepted words for anything else; callers add the key.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError("choose true or false (1/0, yes/no, on/off)")


def is_true(value: Any) -> bool:
    """Whether ``value`` is one of the true words (anything else, unset included, is false):
    for environment switches and values that are either ``true`` or something else."""
    return value is True or str(value).strip().lower() in TRUE_WORDS
