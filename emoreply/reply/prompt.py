"""The reply model's prompt: the one format shared by training, evaluation and the app.

:func:`format_prompt` is the entry point: a chat model (one whose tokenizer has a chat template,
e.g. SmolLM2-Instruct) gets :func:`chat_messages` rendered by that template; a seq2seq model (the
paper's T5) gets the plain string of :func:`build_prompt`. Formats (pinned by tests; changing
them means retraining)::

    emotion: happy | context: "How is your day going?"
    emotion: happy | context: "Hi!" | "Hello, how are you?" | "How is your day going?"
    context: "How is your day going?"                      # emotion None: the no-emotion ablation

``context`` lists the conversation oldest first and always ends with the message being replied
to; each turn is wrapped in straight double quotes (quotes inside a turn are kept as they are).
The requested emotion comes first so that right-truncation to the model's 50-token input budget
never cuts it; :func:`fit_history` drops the oldest turns first when the prompt is too long.

    system:    Reply to the text message in a happy tone.      # chat models; emotion None: no tone
    user:      How is your day going?                          # the message (the other person's turn)
    assistant: <the reply>
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..constants import MAX_MESSAGE_CHARS, MAX_SOURCE_TOKENS
from ..emotion_cnn import EMOTIONS, check_emotion

# The adjective a chat prompt asks for ("in a fearful tone"), per emotion.
TONES: dict[str, str] = {
    "angry": "angry",
    "disgust": "disgusted",
    "fear": "fearful",
    "happy": "happy",
    "sad": "sad",
    "surprise": "surprised",
    "neutral": "neutral",
}
assert tuple(TONES) == EMOTIONS

_CONTRACTION = r"(s|t|ll|re|ve|d|m)"
_RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # DailyDialog: "I ’ ll", "We ’ Ve", "Let ' s" -> "I'll", "We've", "Let's".
    (re.compile(r"(\w)\s*[’‘]\s*(?=\w)"), r"\1'"),
    (re.compile(r"(?<=\w)'(Ve|Ll|Re|S|D|M)\b"), lambda m: "'" + m.group(1).lower()),
    (re.compile(rf"(\w) ' {_CONTRACTION}\b", re.IGNORECASE), r"\1'\2"),
    (re.compile(r"[’‘]"), "'"),
    (re.compile(r"[“”]"), '"'),
    # "Hello , how are you ?" -> "Hello, how are you?"; only before a space or the end, so ":)"
    # and "1,000" are untouched.
    (re.compile(r"\s+([,.?!;:]+)(?=\s|$)"), r"\1"),
    # "niece.It's her birthday" -> "niece. It's her birthday" (a lost space after a full stop).
    (re.compile(r"(?<=[a-z])\.(?=[A-Z][a-z])"), ". "),
    (re.compile(r"\(\s+"), "("),
    (re.compile(r"(?<=[\w.!?])\s+\)"), ")"),
    (re.compile(r"\$\s+(?=\d)"), "$"),
    (re.compile(r"(\d)\s+%"), r"\1%"),
    # ' " quoted words " ' -> '"quoted words"' (only a space-padded pair, as DailyDialog writes it).
    (re.compile(r'(^|\s)"\s+([^"]*?)\s+"(?=\s|$|[,.?!;:])'), r'\1"\2"'),
]
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Undo DailyDialog's tokenisation (spaces around punctuation, curly apostrophes); collapse whitespace.

    Also applied to what a person types, so the model sees the same style in the app as in training.
    Emoji and non-Latin scripts pass through unchanged.
    """
    text = _SPACES.sub(" ", text).strip()
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    return _SPACES.sub(" ", text).strip()


@dataclass(frozen=True)
class PreparedMessage:
    """A validated, normalised message; ``truncated`` says characters past the budget were dropped."""

    text: str
    truncated: bool = False


def prepare_message(message: str, max_chars: int = MAX_MESSAGE_CHARS) -> PreparedMessage:
    """Validate and normalise a received message; raise ValueError when there is nothing to reply to."""
    if not isinstance(message, str):
        raise TypeError(f"The message must be text (str), not {type(message).__name__}.")
    text = normalize_text(message)
    if not text:
        raise ValueError("The message is empty: paste the text message you want to reply to.")
    if len(text) <= max_chars:
        return PreparedMessage(text)
    cut = text[:max_chars]
    # Cut at the last word boundary unless that loses more than a fifth of the budget (e.g. CJK text).
    space = cut.rfind(" ")
    if space > max_chars * 0.8:
        cut = cut[:space]
    return PreparedMessage(cut.rstrip(), truncated=True)


def build_prompt(message: str, emotion: str | None, history: Sequence[str] | None = None) -> str:
    """The model input for replying to ``message`` in ``emotion`` (None: no emotion) after ``history``.

    ``message`` and ``history`` are used as given (callers normalise them with :func:`normalize_text`
    or :func:`prepare_message`); ``history`` is the earlier turns, oldest first.
    """
    turns = [*(history or []), message]
    context = "context: " + " | ".join(f'"{turn}"' for turn in turns)
    if emotion is None:
        return context
    return f"emotion: {check_emotion(emotion)} | {context}"


def fit_history(
    message: str,
    emotion: str | None,
    history: Sequence[str] | None,
    count_tokens: Callable[[str], int],
    max_tokens: int,
    render: Callable[[str, str | None, list[str]], str] = build_prompt,
) -> list[str]:
    """The newest turns of ``history`` whose prompt (``render``) fits in ``max_tokens`` (oldest dropped first).

    Without this, right-truncation of a long history would cut the message itself. The message is
    always kept (the tokenizer truncates it if it alone is too long).
    """
    kept = list(history or [])
    while kept and count_tokens(render(message, emotion, kept)) > max_tokens:
        kept.pop(0)
    return kept


def chat_messages(message: str, emotion: str | None, history: Sequence[str] | None = None) -> list[dict[str, str]]:
    """The chat for a chat model: a system line asking for the tone, then the conversation.

    The message is the other person's turn ("user"); earlier turns alternate back from it, so the
    turn before the message is ours ("assistant").
    """
    if emotion is None:
        system = "Reply to the text message."
    else:
        tone = TONES[check_emotion(emotion)]
        system = f"Reply to the text message in {'an' if tone[0] in 'aeiou' else 'a'} {tone} tone."
    turns = [*(history or []), message]
    chat = [{"role": "system", "content": system}]
    for i, turn in enumerate(turns):
        chat.append({"role": "user" if (len(turns) - 1 - i) % 2 == 0 else "assistant", "content": turn})
    return chat


def is_chat_tokenizer(tokenizer: Any) -> bool:
    """Whether the model behind ``tokenizer`` reads chats (its tokenizer has a chat template)."""
    return bool(getattr(tokenizer, "chat_template", None))


def format_prompt(
    message: str, emotion: str | None, history: Sequence[str] | None = None, tokenizer: Any = None
) -> str:
    """The model input: the chat template applied to :func:`chat_messages` for chat models, else
    :func:`build_prompt`'s string. The one prompt function of training, evaluation and the app."""
    if not is_chat_tokenizer(tokenizer):
        return build_prompt(message, emotion, history)
    return tokenizer.apply_chat_template(
        chat_messages(message, emotion, history), tokenize=False, add_generation_prompt=True
    )


def chat_renderer(tokenizer: Any, max_message_tokens: int = MAX_SOURCE_TOKENS):
    """``render(message, emotion, history)`` for a chat model: the message cut to ``max_message_tokens``,
    then :func:`format_prompt` with the tokenizer's chat template."""

    def render(message: str, emotion: str | None, history: list[str]) -> str:
        message, _ = truncate_tokens(message, tokenizer, max_message_tokens)
        return format_prompt(message, emotion, history, tokenizer)

    return render


def truncate_tokens(text: str, tokenizer: Any, max_tokens: int) -> tuple[str, bool]:
    """(the start of ``text`` that is at most ``max_tokens`` tokens, whether anything was cut).

    Chat prompts cut the message itself, not the rendered prompt, so the template's closing turn
    markers (which tell the model that its reply starts) are never truncated away.
    """
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= max_tokens:
        return text, False
    return text[: enc["offset_mapping"][max_tokens - 1][1]].rstrip(), True
