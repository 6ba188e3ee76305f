"""The reply drafter: a language model that answers a text message in a requested emotion (trained on DailyDialog).

The default is SmolLM2-135M-Instruct with a LoRA adapter (a chat model); the paper's T5 is the
other option. Both are driven by :class:`ReplyDrafter` and the one prompt function :func:`format_prompt`.
"""

from ..constants import MAX_MESSAGE_CHARS
from .base import BASE_MODEL_ID as CHAT_BASE_MODEL_ID
from .drafter import (
    DEFAULT_BASE_MODEL_ID,
    DEFAULT_REPLY_MODEL,
    DEFAULT_REPLY_MODEL_ID,
    DEFAULT_REPLY_MODEL_PATH,
    PRECISIONS,
    REPLY_MODELS,
    Comparison,
    Draft,
    ReplyDrafter,
    compare,
    quantize_int8,
    with_precision,
)
from .prompt import PreparedMessage, build_prompt, format_prompt, normalize_text, prepare_message

__all__ = [
    "CHAT_BASE_MODEL_ID",
    "DEFAULT_BASE_MODEL_ID",
    "DEFAULT_REPLY_MODEL",
    "DEFAULT_REPLY_MODEL_ID",
    "DEFAULT_REPLY_MODEL_PATH",
    "PRECISIONS",
    "REPLY_MODELS",
    "MAX_MESSAGE_CHARS",
    "Comparison",
    "Draft",
    "PreparedMessage",
    "ReplyDrafter",
    "build_prompt",
    "compare",
    "format_prompt",
    "normalize_text",
    "prepare_message",
    "quantize_int8",
    "with_precision",
]
