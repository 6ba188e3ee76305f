"""Words a draft never contains: threats, and insults or profanity aimed at the reader.

A draft is text the user may send with one click, and emotion guidance amplifies whatever the
emotion changes, including the worst of DailyDialog's angry lines: before this list, "I'm going to
kill you!" and "I hate you." were among the drafts of a test sweep. The drafter bans these words
while decoding (``generate``'s ``bad_words_ids``, also saved in the model's generation config), so
the model says the emotion another way; the evaluation counts replies that still contain one.
"""

from __future__ import annotations

import re
from typing import Any

# Inflected forms are listed apart: the ban matches token sequences, and a tokenizer may spell
# "fucking" without the tokens of "fuck" (a guided angry test draft said "I'm so fucking p...").
BLOCKED_PHRASES = (
    "kill", "kills", "killed", "killing", "murder", "die",
    "hate you", "stupid", "idiot", "moron", "jerk", "bastard", "bitch",
    "fuck", "fucking", "fucked", "fucker", "shit", "bullshit",
)  # fmt: skip
_BLOCKED = re.compile(r"\b(" + "|".join(re.escape(p) for p in BLOCKED_PHRASES) + r")\b", re.IGNORECASE)


def contains_blocked(text: str) -> bool:
    """True when ``text`` holds a blocked phrase as whole words, in any case."""
    return _BLOCKED.search(text) is not None


def blocked_token_ids(tokenizer: Any) -> list[list[int]]:
    """Token sequences for ``bad_words_ids``: each phrase after a space and at the start of a reply,
    lower-case and capitalised. A phrase's bare lower-case form is left out: for a BPE tokenizer it
    is a piece of longer words ("die" in "soldier")."""
    forms = {f for p in BLOCKED_PHRASES for f in (f" {p}", f" {p.capitalize()}", p.capitalize())}
    ids = {tuple(tokenizer(form, add_special_tokens=False)["input_ids"]) for form in sorted(forms)}
    return [list(seq) for seq in sorted(ids) if seq]
