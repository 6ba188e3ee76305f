"""Loading images and pretrained folders with errors a person can act on."""

from __future__ import annotations

import io
import socket
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import numpy as np
import torch
from huggingface_hub import constants, try_to_load_from_cache
from PIL import Image, UnidentifiedImageError

from .emotion_cnn.image_processing_emotion_cnn import MAX_IMAGE_PIXELS, ImageTooLargeError, check_image_size

PRETRAINED_DIR = Path(__file__).parent / "pretrained"  # the small models shipped with emoreply
T = TypeVar("T")


class ModelLoadError(RuntimeError):
    """A model folder or Hub id that cannot be loaded, with the reason."""


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub's endpoint accepts a TCP connection within ``timeout`` seconds.

    Offline, huggingface_hub retries every file for about 25 s before giving up; one quick probe
    lets start-up skip that wait and fall back to the bundled models at once.
    """
    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _in_hub_cache(repo_id: str) -> bool:
    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def load_pretrained(load: Callable[[str], T], source: str | Path, what: str, required: tuple[str, ...]) -> T:
    """Call ``load(source)`` for a local folder or Hub id, turning failures into ModelLoadError.

    A local folder must exist and hold ``required`` files; anything that does not look like a local
    path is treated as a Hub id (which needs the network unless cached).
    """
    path = Path(source).expanduser()
    looks_local = path.exists() or str(source).startswith((".", "/", "~")) or str(source).count("/") != 1
    if looks_local:
        if not path.is_dir():
            raise ModelLoadError(f"No {what} folder at {path}")
        missing = [name for name in required if not (path / name).exists()]
        if missing:
            raise ModelLoadError(f"The {what} folder {path} is incomplete: missing {', '.join(missing)}")
    elif not _in_hub_cache(str(source)) and not hub_reachable():
        raise ModelLoadError(
            f"Could not load the {what} from Hub model {source!r}: the Hub is unreachable (is the network "
            "reachable?) and the model is not in the local cache"
        )
    try:
        return load(str(path) if looks_local else str(source))
    except Exception as err:  # corrupt weights, bad JSON, no network: one clear message
        where = f"folder {path}" if looks_local else f"Hub model {source!r} (is the network reachable?)"
        raise ModelLoadError(f"Could not load the {what} from {where}: {type(err).__name__}: {err}") from err


def check_finite(model: Any, what: str, weights: str) -> None:
    """Refuse a model whose weights hold NaN or infinity, naming the file.

    Bytes scrambled inside a safetensors file with an intact header load without complaint and then
    give NaN probabilities; this catches them at start-up instead.
    """
    bad = [n for n, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ModelLoadError(
            f"The {what} in {weights} is corrupt: {len(bad)} weight tensors hold NaN or infinite values "
            f"(first: {bad[0]}). Restore or re-download the file."
        )


def load_image(
    source: Any,
    max_pixels: int = MAX_IMAGE_PIXELS,
    draft_size: tuple[int, int] | None = None,
    max_full_pixels: int | None = None,
) -> Image.Image | np.ndarray:
    """A path, bytes, PIL image or array -> an image the processor takes; clear errors otherwise.

    File sizes are checked from the header before decoding, so a 10,000 x 10,000 upload is refused
    without allocating it (and PIL's decompression-bomb guard cannot crash the caller): the
    processor's ImageTooLargeError, which it raises for arrays and PIL images above its limit.
    ``draft_size``: JPEGs are decoded at the smallest DCT scale (1/2, 1/4, 1/8) still at least this
    large, so a 48 MP photo costs a few MB instead of 150; other formats decode at full size, and
    ``max_full_pixels`` refuses those above it (Pillow holds RGB at 4 bytes a pixel: a 49 MP PNG
    costs 196 MB decoded, about 250 MB with what reading and shrinking it take).
    """
    if isinstance(source, (Image.Image, np.ndarray)):
        return source
    if source is None:
        raise ValueError("No image given")
    if isinstance(source, (bytes, bytearray, memoryview)):
        stream: Any = io.BytesIO(bytes(source))
        name = "the uploaded data"
    elif isinstance(source, (str, Path)):
        if not Path(source).is_file():
            raise ValueError(f"No image file at {source}")
        stream, name = str(source), str(source)
    else:
        raise ValueError(f"Cannot read an image from a {type(source).__name__}")
    try:
        with warnings.catch_warnings():  # PIL warns above 89 MP; our own, lower limit follows at once
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream)
        try:
            check_image_size(*image.size, max_pixels)
            if draft_size is not None:
                image.draft(None, draft_size)  # a no-op for formats without reduced decoding
            if max_full_pixels is not None and image.size[0] * image.size[1] > max_full_pixels:
                raise ImageTooLargeError(
                    f"The image is {image.size[0]}x{image.size[1]} ({image.size[0] * image.size[1] / 1e6:.0f} MP); "
                    f"a {image.format or 'picture'} is read at full size, and the limit for that is "
                    f"{max_full_pixels / 1e6:.0f} MP (JPEG photos up to {max_pixels / 1e6:.0f} MP are read at a "
                    "reduced scale). Please resize it first."
                )
            image.load()
        except BaseException:
            image.close()
            raise
    except UnidentifiedImageError as err:  # its message names a BytesIO object, which helps nobody
        raise ValueError(f"Could not read {name} as an image: not a known image format, or empty") from err
    except Image.DecompressionBombError as err:  # PIL's own guard, from the header, above 179 MP
        raise ImageTooLargeError(
            f"The image is far too large; the limit is {max_pixels / 1e6:.0f} MP. Please resize it first."
        ) from err
    except (OSError, SyntaxError) as err:
        raise ValueError(f"Could not read {name} as an image ({type(err).__name__}: {err})") from err
    if isinstance(stream, str):  # a copy detaches the pixels from the file, which closing releases
        with image:
            return image.convert("RGB") if image.mode == "CMYK" else image.copy()
    return image.convert("RGB") if image.mode == "CMYK" else image  # in memory: no copy, half the peak
