"""Any photo or webcam frame -> the largest face, cropped, 48x48 grayscale, normalised.

Face detection uses OpenCV's Haar cascade, whose weights ship inside the opencv-python(-headless)
4.x wheel: it works offline on a CPU with no download. Images that already are ``size x size``
(FER-2013 faces) skip detection.
"""

from __future__ import annotations

import threading
from typing import Any

import cv2  # at import time: first imports from several threads at once can see cv2 half-initialised
import numpy as np
import torch
from PIL import Image
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor


class NoFaceError(ValueError):
    """Raised when a frame holds no detectable face and the caller did not ask for face boxes."""


class ImageTooLargeError(ValueError):
    """Raised for images above ``max_image_pixels``: refused before any costly work."""


MAX_IMAGE_PIXELS = 50_000_000  # the default limit (emoreply.loading checks it from a file's header)
HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I", "F")  # 16/32-bit grayscale PIL modes: scaled, not clipped


def check_image_size(width: int, height: int, max_pixels: int) -> None:
    """ImageTooLargeError, in words, for a ``width`` x ``height`` image above ``max_pixels``."""
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"The image is {width}x{height} ({width * height / 1e6:.0f} MP); the limit is "
            f"{max_pixels / 1e6:.0f} MP. Please resize it first."
        )


def is_channels_first(shape: tuple[int, ...]) -> bool:
    """Whether an image array's shape is (C, H, W): 1, 3 or 4 leading channels and no such trailing axis."""
    return len(shape) == 3 and shape[0] in (1, 3, 4) and shape[-1] not in (1, 3, 4)


_local = threading.local()  # one cascade per thread: OpenCV objects are not shared across threads


def _face_cascade() -> Any:
    if not hasattr(_local, "cascade"):
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if cascade.empty():
            raise RuntimeError("OpenCV's Haar face cascade could not be loaded (needs opencv 4.x)")
        _local.cascade = cascade
    return _local.cascade


def to_gray_uint8(image: Any) -> np.ndarray:
    """PIL image (any mode) or array (HxW, HxWxC, CxHxW; uint8/uint16/float) -> (H, W) uint8."""
    if isinstance(image, Image.Image):
        if image.mode in HIGH_DEPTH_MODES:
            image = np.asarray(image, dtype=np.float32)
        else:
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                # Transparent pixels over white, as a viewer shows them, not over black.
                rgba = image.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, rgba)
            return np.asarray(image.convert("L"), dtype=np.uint8)
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    array = np.asarray(image)
    if array.dtype == object or array.ndim not in (2, 3):
        raise ValueError(f"Expected an image (H, W) or (H, W, C) array, got shape {array.shape}")
    if array.ndim == 3:
        if is_channels_first(array.shape):
            array = np.moveaxis(array, 0, -1)  # (C, H, W) -> (H, W, C)
        if array.shape[-1] == 4:
            array = array[..., :3]
        if array.shape[-1] == 3 and array.dtype == np.uint8:  # OpenCV: same weights, 10x faster
            return cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2GRAY)
        if array.shape[-1] == 3:
            array = array.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        elif array.shape[-1] == 1:
            array = array[..., 0]
        else:
            raise ValueError(f"Expected 1, 3 or 4 channels, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    with np.errstate(over="ignore", invalid="ignore"):  # values beyond float32's range become inf: refused below
        array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError("Image contains NaN, infinite or out-of-range values")
    high = float(array.max()) if array.size else 0.0
    scale = 1.0 if high <= 1.0 else 255.0 if high <= 255.0 else 65535.0
    return np.clip(np.rint(array / scale * 255.0), 0, 255).astype(np.uint8)


class EmotionCNNImageProcessor(BaseImageProcessor):
    """Find the largest face, crop it with a margin and turn it into the CNN's input.

    Args:
        size: side of the square model input.
        image_mean, image_std: normalisation of pixel values in [0, 1] (FER-2013 train statistics).
        face_margin: margin added around the detected box on each side, as a fraction of its side
            (FER-2013 crops show the forehead and chin; the detector's box is tighter).
        detection_size: frames are downscaled so their longer side is at most this before detection
            (detection cost grows with area; faces in webcam frames are large).
        min_face_fraction: smallest face side accepted, as a fraction of the frame's shorter side.
        large_face_fraction: faces at least this large (same unit) are searched first, and smaller
            ones only when none is found: most of the cascade's work is on small windows, and a
            webcam user's face fills 15% of the frame's height or more within about 1 m of a laptop
            camera (0 disables this first pass).
        min_face_score: smallest Haar cascade score (level weight) accepted as a face.
        max_image_pixels: images with more pixels are refused with a clear error.
    """

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        size: int = 48,
        image_mean: float = 0.5077,
        image_std: float = 0.2550,
        face_margin: float = 0.15,
        detection_size: int = 320,
        min_face_fraction: float = 0.1,
        large_face_fraction: float = 0.15,
        min_face_score: float = 2.0,
        max_image_pixels: int = MAX_IMAGE_PIXELS,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 < min_face_fraction <= 1.0 or not 0.0 <= large_face_fraction <= 1.0:
            raise ValueError(
                f"min_face_fraction must be in (0, 1] and large_face_fraction in [0, 1], got "
                f"{min_face_fraction} and {large_face_fraction}"
            )
        if detection_size < 24 or size < 8 or image_std <= 0 or not 0.0 <= face_margin <= 1.0:
            raise ValueError(
                f"Invalid processor settings: detection_size {detection_size} (>= 24), size {size} (>= 8), "
                f"image_std {image_std} (> 0), face_margin {face_margin} (0 to 1)"
            )
        self.size = size
        self.image_mean = image_mean
        self.image_std = image_std
        self.face_margin = face_margin
        self.detection_size = detection_size
        self.min_face_fraction = min_face_fraction
        self.large_face_fraction = large_face_fraction
        self.min_face_score = min_face_score
        self.max_image_pixels = max_image_pixels

    def detect_faces(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        """All faces in a (H, W) uint8 frame as (x0, y0, x1, y1) boxes, largest first.

        With ``large_face_fraction`` set, a frame with a large face returns only the faces found by
        the first (large-face) pass; a frame without one is searched again over all sizes, so no
        face the single full pass would find is lost.
        """
        h, w = gray.shape
        scale = min(1.0, self.detection_size / max(h, w))
        small = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        min_side = max(24, int(self.min_face_fraction * min(small.shape)))
        if min(small.shape) < min_side:
            return []
        large_side = int(self.large_face_fraction * min(small.shape))
        for smallest in ([large_side] if large_side > min_side else []) + [min_side]:
            # No histogram equalisation: it made the cascade fire on textured background (measured on
            # scikit-image's astronaut photo). Weak detections are dropped by the cascade's score.
            found, _, scores = _face_cascade().detectMultiScale3(
                small, scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest), outputRejectLevels=True
            )
            boxes = [
                (round(x / scale), round(y / scale), round((x + bw) / scale), round((y + bh) / scale))
                for (x, y, bw, bh), score in zip(found if len(found) else [], np.ravel(scores), strict=True)
                if score >= self.min_face_score
            ]
            if boxes:
                return sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)
        return []

    def crop_face(self, gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """Square crop around ``box`` with the margin, padded by edge pixels, resized to size."""
        x0, y0, x1, y1 = box
        side = max(x1 - x0, y1 - y0) * (1 + 2 * self.face_margin)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left, top = round(cx - side / 2), round(cy - side / 2)
        side = round(side)
        h, w = gray.shape
        pad = max(0, -left, -top, left + side - w, top + side - h)
        if pad:
            gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        crop = gray[top + pad : top + pad + side, left + pad : left + pad + side]
        return cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_AREA)

    def face_and_box(self, image: Any) -> tuple[np.ndarray | None, tuple[int, int, int, int] | None, int]:
        """One image -> (48x48 uint8 face or None, its box in the image or None, faces found)."""
        if isinstance(image, Image.Image):
            w, h = image.size
        else:
            shape = np.shape(image)
            if len(shape) not in (2, 3):
                raise ValueError(f"Expected an image (H, W) or (H, W, C) array, got shape {shape}")
            h, w = shape[1:3] if is_channels_first(shape) else shape[:2]
        if h == 0 or w == 0:
            raise ValueError(f"Image is empty ({w}x{h} pixels)")
        check_image_size(w, h, self.max_image_pixels)
        gray = to_gray_uint8(image)
        if gray.shape == (self.size, self.size):  # already a face crop (FER-2013 style)
            return gray, (0, 0, self.size, self.size), 1
        boxes = self.detect_faces(gray)
        if not boxes:
            return None, None, 0
        return self.crop_face(gray, boxes[0]), boxes[0], len(boxes)

    def normalize_faces(self, faces: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, H, W) or (B, 1, H, W) uint8 faces -> (B, 1, H, W) float model input."""
        x = torch.as_tensor(faces).float()
        if x.ndim == 3:
            x = x[:, None]
        return (x / 255.0 - self.image_mean) / self.image_std

    def preprocess(
        self,
        images: Any,
        return_tensors: str | None = "pt",  # "pt" (or None): torch tensor; "np": numpy
        return_face_boxes: bool = False,
        **kwargs,
    ) -> BatchFeature:
        """Images -> ``pixel_values`` (B, 1, size, size).

        With ``return_face_boxes=True`` images without a face are kept (zeros in ``pixel_values``)
        and reported in ``face_found`` / ``face_boxes`` / ``num_faces``; otherwise a frame with no
        face raises :class:`NoFaceError`, so no caller classifies a face-less frame by accident.
        """
        if isinstance(images, (list, tuple)):
            images = list(images)
        else:
            images = [images]
        if not images:
            raise ValueError("No images given")
        faces, boxes, counts = [], [], []
        for i, image in enumerate(images):
            face, box, count = self.face_and_box(image)
            if face is None and not return_face_boxes:
                raise NoFaceError(f"No face found in image {i}" if len(images) > 1 else "No face found in the image")
            faces.append(face if face is not None else np.zeros((self.size, self.size), np.uint8))
            boxes.append(box)
            counts.append(count)
        pixel_values = self.normalize_faces(np.stack(faces))
        data: dict[str, Any] = {"pixel_values": pixel_values.numpy() if return_tensors == "np" else pixel_values}
        if return_face_boxes:
            data.update(face_found=[b is not None for b in boxes], face_boxes=boxes, num_faces=counts)
        return BatchFeature(data=data, tensor_type=None)

    def __call__(self, images: Any, *args, **kwargs) -> BatchFeature:
        return self.preprocess(images, *args, **kwargs)
