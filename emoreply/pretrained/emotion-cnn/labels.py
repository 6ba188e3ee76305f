"""The seven emotions: the one place that names them.

The emotion reader predicts them in FER-2013 order; DailyDialog labels the same seven
feelings in another order and calls "neutral" "no emotion". ``EMOTIONS`` is the project's
canonical order (FER-2013's), and the two maps below are the only bridge between the corpora.

This file travels with the Hub model code (relative import), so it must stay dependency-free.
"""

# FER-2013 class order: index i is the model's output logit i.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# What a person reads in the UI and in model cards.
DISPLAY_NAMES: dict[str, str] = {
    "angry": "Angry 😠",
    "disgust": "Disgusted 🤢",
    "fear": "Afraid 😨",
    "happy": "Happy 😄",
    "sad": "Sad 😢",
    "surprise": "Surprised 😮",
    "neutral": "Neutral 😐",
}

# DailyDialog emotion ids (0 no emotion, 1 anger, 2 disgust, 3 fear, 4 happiness, 5 sadness,
# 6 surprise) -> the project's emotion name.
DAILYDIALOG_TO_EMOTION: dict[int, str] = {
    0: "neutral",
    1: "angry",
    2: "disgust",
    3: "fear",
    4: "happy",
    5: "sad",
    6: "surprise",
}
EMOTION_TO_DAILYDIALOG: dict[str, int] = {name: i for i, name in DAILYDIALOG_TO_EMOTION.items()}

ID2LABEL: dict[int, str] = dict(enumerate(EMOTIONS))
LABEL2ID: dict[str, int] = {name: i for i, name in ID2LABEL.items()}


def check_emotion(name: str) -> str:
    """Return the canonical emotion name for ``name`` (case-insensitive) or raise a clear error."""
    key = str(name).strip().lower()
    if key not in LABEL2ID:
        raise ValueError(f"Unknown emotion {name!r}; valid emotions are: {', '.join(EMOTIONS)}.")
    return key
