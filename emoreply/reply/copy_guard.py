"""Does a reply repeat the message? The drafter's copy guard replaces such drafts; the evaluation counts them."""

from __future__ import annotations

import re
from collections import Counter

from ..constants import COPY_MIN_WORDS, COPY_OVERLAP

_WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens (also the unit of the evaluation's distinct-n)."""
    return _WORD.findall(text.lower())


def is_copy(reply: str, message: str) -> bool:
    """True when the reply repeats the message.

    Both are reduced to lower-case words without punctuation. A copy is either identical, or a reply
    of at least ``COPY_MIN_WORDS`` words of which >= ``COPY_OVERLAP`` (counted with multiplicity)
    also occur in the message.
    """
    r = [w for w in words(reply) if w[0].isalnum() or w[0] == "_"]
    m = [w for w in words(message) if w[0].isalnum() or w[0] == "_"]
    if not r:
        return False
    if r == m:
        return True
    if len(r) < COPY_MIN_WORDS:
        return False
    overlap = sum((Counter(r) & Counter(m)).values())
    return overlap / len(r) >= COPY_OVERLAP
