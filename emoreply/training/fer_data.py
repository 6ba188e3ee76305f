"""FER-2013 as in-memory uint8 tensors, the class weights and the batch augmentation.

48x48 faces are tiny (28,709 of them are 66 MB as uint8), so the whole split is decoded once
and augmented on the batch in torch: much faster on 2 cores than per-image PIL transforms.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..emotion_cnn import EMOTIONS


def load_fer_split(source: str, split: str, max_samples: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Load ``split`` ("train"/"test") from a folder of parquet files or a Hub dataset id.

    Returns (images (N, 1, 48, 48) uint8, labels (N,) int64).
    """
    import datasets

    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob(f"{split}*.parquet"))
        if not files:
            raise FileNotFoundError(f"No {split}*.parquet in {path}")
        ds = datasets.load_dataset("parquet", data_files={split: [str(f) for f in files]}, split=split)
    else:
        ds = datasets.load_dataset(source, split=split)  # Hub dataset id (needs the network)
    if max_samples is not None:
        ds = ds.select(range(min(max_samples, len(ds))))
    ds = ds.cast_column("image", datasets.Image(decode=False))  # decode ourselves: 3x faster
    images = np.stack([_decode_gray(item["bytes"], item.get("path")) for item in ds["image"]])
    labels = torch.tensor(ds["label"], dtype=torch.long)
    if labels.numel() and (labels.min() < 0 or labels.max() >= len(EMOTIONS)):
        raise ValueError(f"Labels must be FER-2013 class ids 0..{len(EMOTIONS) - 1}")
    return torch.from_numpy(images)[:, None], labels


def _decode_gray(data: bytes | None, path: str | None) -> np.ndarray:
    with Image.open(io.BytesIO(data) if data is not None else path) as image:
        return np.asarray(image.convert("L").resize((48, 48)), dtype=np.uint8)


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, validation): ``fraction`` of every class held out, reproducibly."""
    g = torch.Generator().manual_seed(seed)
    train_idx, val_idx = [], []
    for c in labels.unique():
        idx = (labels == c).nonzero().squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_val = math.ceil(len(idx) * fraction) if fraction > 0 else 0
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return torch.cat(train_idx).sort().values, torch.cat(val_idx).sort().values


def class_weights(labels: torch.Tensor, num_classes: int, scheme: str) -> list[float] | None:
    """Per-class loss weights, normalised to sum to 1 (the paper's scheme is "inverse").

    "inverse": proportional to 1/count; "sqrt_inverse": to 1/sqrt(count), a softer version that
    costs less overall accuracy; "none": unweighted.
    """
    if scheme == "none":
        return None
    counts = torch.bincount(labels, minlength=num_classes).double().clamp(min=1)
    power = {"inverse": 1.0, "sqrt_inverse": 0.5}[scheme]
    w = counts.pow(-power)
    # Normalised to mean 1 rather than sum 1: identical weighted-CE value and gradients (the
    # weighted mean divides by the weights' sum), but readable numbers in config.json.
    return (w / w.mean()).tolist()


def augment(images: torch.Tensor, generator: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """Random flip, rotation, scale, shift and erasing on a float batch (B, 1, H, W)."""
    b = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(b, generator=generator)

    angle = uniform(-12, 12) * strength * math.pi / 180
    scale = 1 + uniform(-0.12, 0.12) * strength
    flip = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    tx, ty = uniform(-0.1, 0.1) * strength, uniform(-0.1, 0.1) * strength
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # Random erasing (Zhong et al. 2020): one rectangle per image, half the time.
    h, w = images.shape[-2:]
    eh = (uniform(0.1, 0.4) * h).long()
    ew = (uniform(0.1, 0.4) * w).long()
    y0 = (torch.rand(b, generator=generator) * (h - eh)).long()
    x0 = (torch.rand(b, generator=generator) * (w - ew)).long()
    keep = torch.rand(b, generator=generator) < 0.5 * strength
    rows = torch.arange(h)[None, :, None]
    cols = torch.arange(w)[None, None, :]
    in_rows = (rows >= y0[:, None, None]) & (rows < (y0 + eh)[:, None, None])  # (B, H, 1)
    in_cols = (cols >= x0[:, None, None]) & (cols < (x0 + ew)[:, None, None])  # (B, 1, W)
    mask = in_rows & in_cols & keep[:, None, None]  # (B, H, W)
    return out.masked_fill(mask[:, None].to(out.device), 0.0)
