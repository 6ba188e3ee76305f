"""The reply drafter: a T5 that answers a text message in a requested emotion (trained on DailyDialog)."""

from .drafter import (
    DEFAULT_BASE_MODEL_ID,
    DEFAULT_REPLY_MODEL_ID,
    DEFAULT_REPLY_MODEL_PATH,
    PRECISIONS,
    Comparison,
    Draft,
    ReplyDrafter,
    quantize_int8,
    with_precision,
)
from .judge import EmotionJudge
from .prompt import MAX_MESSAGE_CHARS, PreparedMessage, build_prompt, normalize_text, prepare_message

__all__ = [
    "DEFAULT_BASE_MODEL_ID",
    "DEFAULT_REPLY_MODEL_ID",
    "DEFAULT_REPLY_MODEL_PATH",
    "PRECISIONS",
    "MAX_MESSAGE_CHARS",
    "Comparison",
    "Draft",
    "EmotionJudge",
    "PreparedMessage",
    "ReplyDrafter",
    "build_prompt",
    "normalize_text",
    "prepare_message",
    "quantize_int8",
    "with_precision",
]
