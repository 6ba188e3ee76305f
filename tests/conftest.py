"""Fixtures that build tiny models and data; the suite never reads ../shared or the network."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)  # many tiny ops: threads cost more than they give, and CI has 2 cores


def load_script(name: str):
    """Import a train/ or bench/ script as a module (they are scripts, not a package)."""
    path = ROOT / name
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def face_rgb() -> np.ndarray:
    """A real photo with one face (scikit-image's astronaut, shipped in its wheel), (512, 512, 3)."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def tiny_emotion_model_dir(tmp_path_factory) -> Path:
    """A small random emotion CNN saved with its processor, as from_pretrained expects."""
    from emoreply import EmotionCNNConfig, EmotionCNNForImageClassification, EmotionCNNImageProcessor

    folder = tmp_path_factory.mktemp("emotion-cnn")
    torch.manual_seed(0)
    EmotionCNNForImageClassification(EmotionCNNConfig(channels=[4, 8, 8], hidden_size=16)).save_pretrained(folder)
    EmotionCNNImageProcessor().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def fer_folder(tmp_path_factory) -> Path:
    """FER-2013-shaped parquet files (train 140, test 35): 48x48 grayscale PNGs and labels 0..6."""
    import datasets

    folder = tmp_path_factory.mktemp("fer2013")
    rng = np.random.default_rng(0)
    for split, n in (("train", 140), ("test", 35)):
        labels = [i % 7 for i in range(n)]
        # Class-dependent brightness makes the task learnable, so metrics are not all chance.
        images = [
            Image.fromarray(np.clip(rng.normal(30 * c + 40, 20, (48, 48)), 0, 255).astype(np.uint8))
            for c in labels
        ]
        ds = datasets.Dataset.from_dict({"image": images, "label": labels})
        ds.cast_column("image", datasets.Image()).to_parquet(str(folder / f"{split}.parquet"))
    return folder
