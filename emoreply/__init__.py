"""emoreply: read the reader's face, draft a reply in that emotion."""

from .emotion_cnn import (
    DAILYDIALOG_TO_EMOTION,
    DISPLAY_NAMES,
    EMOTION_TO_DAILYDIALOG,
    EMOTIONS,
    EmotionCNNConfig,
    EmotionCNNForImageClassification,
    EmotionCNNImageProcessor,
    ImageTooLargeError,
    NoFaceError,
    check_emotion,
)

__all__ = [
    "DAILYDIALOG_TO_EMOTION",
    "DISPLAY_NAMES",
    "EMOTIONS",
    "EMOTION_TO_DAILYDIALOG",
    "EmotionCNNConfig",
    "EmotionCNNForImageClassification",
    "EmotionCNNImageProcessor",
    "ImageTooLargeError",
    "NoFaceError",
    "check_emotion",
]

# The two halves' user-facing APIs: the emotion reader, and the reply drafter (emoreply.reply) with
# its prompt. What trains and evaluates them (the emotion judge among it) is emoreply.training.
from .reader import EmotionReader, EmotionReading  # noqa: E402
from .reply import Comparison, Draft, ReplyDrafter, build_prompt, normalize_text  # noqa: E402

__all__ += ["EmotionReader", "EmotionReading", "Comparison", "Draft", "ReplyDrafter"]
__all__ += ["build_prompt", "normalize_text"]
