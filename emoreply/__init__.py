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
