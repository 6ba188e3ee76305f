"""The emotion CNN as a transformers model: shape, loss, save/load, Auto classes, Hub code."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification, pipeline

from emoreply import (
    DAILYDIALOG_TO_EMOTION,
    EMOTION_TO_DAILYDIALOG,
    EMOTIONS,
    EmotionCNNConfig,
    EmotionCNNForImageClassification,
    check_emotion,
)


def test_labels_are_fer_order_and_map_both_ways_to_dailydialog():
    assert EMOTIONS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert DAILYDIALOG_TO_EMOTION[0] == "neutral" and DAILYDIALOG_TO_EMOTION[4] == "happy"
    assert sorted(DAILYDIALOG_TO_EMOTION.values()) == sorted(EMOTIONS)
    assert all(DAILYDIALOG_TO_EMOTION[EMOTION_TO_DAILYDIALOG[e]] == e for e in EMOTIONS)
    assert check_emotion(" Happy ") == "happy"
    with pytest.raises(ValueError, match="valid emotions are: angry, disgust"):
        check_emotion("joyful")


def test_default_config_is_the_papers_model_with_851k_parameters():
    config = EmotionCNNConfig()
    assert config.id2label == dict(enumerate(EMOTIONS)) and config.num_labels == 7
    assert config.flat_features == 2880
    model = EmotionCNNForImageClassification(config)
    assert sum(p.numel() for p in model.parameters()) == 851_955


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"channels": []}, "channels"),
        ({"channels": [8, -1]}, "channels"),
        ({"image_size": 50}, "divisible"),
        ({"conv_dropout": 1.0}, "conv_dropout"),
        ({"focal_gamma": -1}, "focal_gamma"),
        ({"class_weights": [1.0, 2.0]}, "class_weights"),
        ({"test_time_shift": 12}, "test_time_shift"),
        ({"test_time_shift": -1}, "test_time_shift"),
    ],
)
def test_config_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EmotionCNNConfig(**kwargs)


def test_forward_returns_logits_and_loss_with_labels():
    model = EmotionCNNForImageClassification(EmotionCNNConfig(channels=[4, 8, 8], hidden_size=16)).train()
    x, y = torch.randn(5, 1, 48, 48), torch.tensor([0, 1, 2, 3, 4])
    out = model(x, labels=y)
    assert out.logits.shape == (5, 7) and out.loss.ndim == 0 and out.loss.requires_grad
    assert model(x).loss is None
    assert model(x, labels=y, return_dict=False)[1].shape == (5, 7)


def test_class_weights_and_focal_loss_change_the_loss():
    torch.manual_seed(0)
    x, y = torch.randn(16, 1, 48, 48), torch.arange(16) % 7
    base = EmotionCNNForImageClassification(EmotionCNNConfig(channels=[4, 8, 8], hidden_size=16)).eval()
    state = base.state_dict()
    losses = {}
    for name, extra in {
        "plain": {},
        "weighted": {"class_weights": [5, 1, 1, 1, 1, 1, 1]},
        "focal": {"focal_gamma": 2.0},
    }.items():
        model = EmotionCNNForImageClassification(EmotionCNNConfig(channels=[4, 8, 8], hidden_size=16, **extra)).eval()
        model.load_state_dict(state)
        losses[name] = model(x, labels=y).loss.item()
    logits = base(x).logits
    assert losses["plain"] == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-5)
    assert losses["weighted"] != pytest.approx(losses["plain"])
    assert losses["focal"] < losses["plain"]  # focal down-weights every example's loss


def test_eval_mode_averages_the_mirror_image():
    torch.manual_seed(0)
    model = EmotionCNNForImageClassification(EmotionCNNConfig(channels=[4, 8, 8], hidden_size=16)).eval()
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        tta = model(x).logits  # the config's default: the face and its mirror image
        single, mirrored = model(x, test_time_flip=False).logits, model(x.flip(-1), test_time_flip=False).logits
    torch.testing.assert_close(tta, (single + mirrored) / 2, rtol=1e-5, atol=1e-5)
    assert model.config.test_time_flip  # a call's views leave the config alone


def test_ten_view_tta_averages_shifted_and_mirrored_faces():
    torch.manual_seed(0)
    model = EmotionCNNForImageClassification(EmotionCNNConfig(channels=[4, 8, 8], hidden_size=16)).eval()
    x = torch.randn(2, 1, 48, 48)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    shifted = [x] + [padded[..., 2 + dy : 50 + dy, 2 + dx : 50 + dx] for dy, dx in ((2, 0), (-2, 0), (0, 2), (0, -2))]
    assert torch.equal(shifted[1][..., :-2, :], x[..., 2:, :])  # a 2-pixel shift, edge rows repeated
    with torch.no_grad():
        ten = model(x, test_time_shift=2).logits
        views = [model(v, test_time_flip=False).logits for v in shifted + [v.flip(-1) for v in shifted]]
    torch.testing.assert_close(ten, torch.stack(views).mean(0), rtol=1e-5, atol=1e-5)
    model.train()
    assert model(x).logits.shape == (2, 7)  # training sees one view only


def test_fused_copy_gives_the_same_logits_without_batchnorm():
    torch.manual_seed(0)
    model = EmotionCNNForImageClassification(EmotionCNNConfig(channels=[4, 8, 8], hidden_size=16)).eval()
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # non-trivial statistics
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.normal_()
    fused = model.fused_for_inference()
    x = torch.randn(3, 1, 48, 48)
    with torch.inference_mode():
        torch.testing.assert_close(fused(x).logits, model(x).logits, rtol=1e-4, atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 6  # the original is untouched
    assert fused.config is model.config and not fused.training


def test_save_and_load_roundtrip_uses_safetensors_and_auto_classes(tiny_emotion_model_dir):
    files = {p.name for p in tiny_emotion_model_dir.iterdir()}
    assert "model.safetensors" in files and not files & {"pytorch_model.bin", "model.bin"}
    assert {
        "configuration_emotion_cnn.py",
        "modeling_emotion_cnn.py",
        "image_processing_emotion_cnn.py",
        "labels.py",
    } <= files
    config = json.loads((tiny_emotion_model_dir / "config.json").read_text())
    assert config["auto_map"]["AutoModelForImageClassification"].startswith("modeling_emotion_cnn.")
    assert (
        "AutoImageProcessor"
        in json.loads((tiny_emotion_model_dir / "preprocessor_config.json").read_text())["auto_map"]
    )
    model = AutoModelForImageClassification.from_pretrained(tiny_emotion_model_dir)
    again = EmotionCNNForImageClassification.from_pretrained(tiny_emotion_model_dir)
    assert isinstance(model, EmotionCNNForImageClassification)
    assert isinstance(AutoConfig.from_pretrained(tiny_emotion_model_dir), EmotionCNNConfig)
    x = torch.randn(2, 1, 48, 48)
    torch.testing.assert_close(model.eval()(x).logits, again.eval()(x).logits)
    assert AutoImageProcessor.from_pretrained(tiny_emotion_model_dir).face_margin == 0.15


def test_pipeline_on_saved_folder(tiny_emotion_model_dir, face_rgb):
    from PIL import Image

    classify = pipeline("image-classification", model=str(tiny_emotion_model_dir), trust_remote_code=True)
    out = classify(Image.fromarray(face_rgb), top_k=7)
    assert sorted(o["label"] for o in out) == sorted(EMOTIONS)
    assert sum(o["score"] for o in out) == pytest.approx(1.0, abs=1e-4)


def test_hub_code_loads_without_emoreply_installed(tiny_emotion_model_dir, tmp_path, face_rgb):
    """A user without emoreply: trust_remote_code runs the files saved beside the weights."""
    import numpy as np

    np.save(tmp_path / "face.npy", face_rgb)
    code = textwrap.dedent(f"""
        import sys
        sys.modules["emoreply"] = None  # any import of emoreply now fails
        import numpy as np
        from transformers import AutoImageProcessor, AutoModelForImageClassification
        folder = {str(tiny_emotion_model_dir)!r}
        model = AutoModelForImageClassification.from_pretrained(folder, trust_remote_code=True)
        processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)
        assert "emoreply" not in type(model).__module__, type(model).__module__
        inputs = processor(np.load({str(tmp_path / "face.npy")!r}), return_face_boxes=True)
        print(model.eval()(inputs["pixel_values"]).logits.shape, inputs["face_boxes"])
    """)
    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "torch.Size([1, 7])" in result.stdout


@pytest.mark.parametrize(
    "name", ["labels.py", "configuration_emotion_cnn.py", "modeling_emotion_cnn.py", "image_processing_emotion_cnn.py"]
)
def test_bundled_hub_code_matches_the_package(name):
    """The bundled model folder carries copies of the model code (for trust_remote_code users); keep them in sync."""
    from pathlib import Path

    from emoreply.reader import DEFAULT_EMOTION_MODEL

    source = Path(__file__).resolve().parents[1] / "emoreply" / "emotion_cnn" / name
    assert (DEFAULT_EMOTION_MODEL / name).read_text() == source.read_text(), f"re-export the bundled model: {name}"


def test_weights_with_nan_are_refused_by_file_name(tiny_emotion_model_dir, tmp_path):
    """Scrambled tensor bytes under an intact safetensors header load fine; the reader refuses them."""
    import shutil

    from safetensors.torch import load_file, save_file

    from emoreply.loading import ModelLoadError
    from emoreply.reader import EmotionReader

    folder = tmp_path / "corrupt"
    shutil.copytree(tiny_emotion_model_dir, folder)
    weights = load_file(folder / "model.safetensors")
    name = next(n for n, t in weights.items() if t.is_floating_point())
    weights[name].view(-1)[0] = float("nan")
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match=rf"model\.safetensors is corrupt: 1 weight tensors .*{name}"):
        EmotionReader.from_pretrained(folder)
