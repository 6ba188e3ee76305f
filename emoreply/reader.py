"""EmotionReader: an image in, the face box and the seven emotion probabilities out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .emotion_cnn import EMOTIONS, EmotionCNNForImageClassification, EmotionCNNImageProcessor
from .loading import PRETRAINED_DIR, check_finite, load_image, load_pretrained

DEFAULT_EMOTION_MODEL = PRETRAINED_DIR / "emotion-cnn"  # bundled, trained on FER-2013 by this project
EMOTION_MODEL_HUB_ID = "emoreply/emotion-cnn-fer2013"


@dataclass(frozen=True)
class EmotionReading:
    """What the reader saw in one image."""

    face_found: bool
    box: tuple[int, int, int, int] | None = None  # (x0, y0, x1, y1) in the input image's pixels
    num_faces: int = 0  # faces found (with a large face present, only the large ones are searched)
    probabilities: dict[str, float] = field(default_factory=dict)  # emotion -> probability, all 7
    emotion: str | None = None  # the most probable emotion

    @property
    def faces_note(self) -> str:
        """Which face was read when there were several ("3 faces found; using the largest"), else ""."""
        return f"{self.num_faces} faces found; using the largest" if self.num_faces > 1 else ""

    @property
    def message(self) -> str:
        """A one-line account for people: what was found and which face was used."""
        if not self.face_found:
            return "No face found"
        extra = f" ({self.faces_note})" if self.faces_note else ""
        return f"{self.emotion} ({self.probabilities[self.emotion]:.0%}){extra}"


class EmotionReader:
    """Face detection + the emotion CNN, loaded once and reused.

    ``model`` is the eval-only fused copy of the loaded CNN (BatchNorm folded, channels_last):
    read from it, but train or save the model that ``from_pretrained`` of the CNN gives.
    """

    def __init__(self, model: EmotionCNNForImageClassification, processor: EmotionCNNImageProcessor) -> None:
        self.model = model.fused_for_inference()
        self.processor = processor

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path | None = None, **kwargs: Any) -> EmotionReader:
        """Load from a folder or Hub id; the bundled model when ``name_or_path`` is None."""
        source = name_or_path or DEFAULT_EMOTION_MODEL
        required = ("config.json", "model.safetensors", "preprocessor_config.json")
        model = load_pretrained(
            lambda s: EmotionCNNForImageClassification.from_pretrained(s, **kwargs), source, "emotion model", required
        )
        check_finite(model, "emotion model", f"{source}/model.safetensors")
        processor = load_pretrained(EmotionCNNImageProcessor.from_pretrained, source, "emotion model", required)
        return cls(model, processor)

    @torch.inference_mode()
    def read(self, image: Any) -> EmotionReading:
        """Read one image (path, bytes, PIL image or array). Raises ValueError for unreadable input."""
        return self.read_batch([image])[0]

    @torch.inference_mode()
    def read_batch(self, images: list[Any]) -> list[EmotionReading]:
        """Read several images with one CNN forward pass."""
        loaded = [load_image(im, self.processor.max_image_pixels) for im in images]
        inputs = self.processor(loaded, return_face_boxes=True)
        found = [i for i, ok in enumerate(inputs["face_found"]) if ok]
        probs = torch.empty(0, len(EMOTIONS))
        if found:
            probs = self.model(inputs["pixel_values"][found]).logits.softmax(-1)  # (F, 7)
        readings, row = [], iter(probs.tolist())
        for i in range(len(loaded)):
            if i not in found:
                readings.append(EmotionReading(face_found=False))
                continue
            p = dict(zip((self.model.config.id2label[k] for k in range(len(EMOTIONS))), next(row), strict=True))
            readings.append(
                EmotionReading(
                    face_found=True,
                    box=tuple(inputs["face_boxes"][i]),
                    num_faces=inputs["num_faces"][i],
                    probabilities=p,
                    emotion=max(p, key=p.get),
                )
            )
        return readings
