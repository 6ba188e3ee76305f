"""Image processor and EmotionReader: faces found or explicitly not, and bad input never crashes."""

from __future__ import annotations

import contextlib
import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from emoreply import EMOTIONS, EmotionCNNImageProcessor, ImageTooLargeError, NoFaceError
from emoreply.loading import ModelLoadError
from emoreply.reader import DEFAULT_EMOTION_MODEL, EmotionReader, EmotionReading

processor = EmotionCNNImageProcessor()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height: the size is known without any pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_finds_the_face_in_a_real_photo_and_returns_its_box(face_rgb):
    out = processor(face_rgb, return_face_boxes=True)
    assert out["pixel_values"].shape == (1, 1, 48, 48)
    assert out["face_found"] == [True] and out["num_faces"] == [1]
    x0, y0, x1, y1 = out["face_boxes"][0]
    # The astronaut's face is at about (175-270, 65-160) in the 512x512 photo.
    assert 150 < x0 < 200 and 40 < y0 < 90 and 240 < x1 < 300 and 130 < y1 < 190


def test_no_face_is_reported_never_classified(face_rgb):
    blank = np.full((480, 640, 3), 128, np.uint8)
    out = processor([blank, face_rgb], return_face_boxes=True)
    assert out["face_found"] == [False, True] and out["face_boxes"][0] is None and out["num_faces"][0] == 0
    with pytest.raises(NoFaceError, match="No face"):
        processor(blank)


def test_several_faces_uses_the_largest(two_faces):
    out = processor(two_faces, return_face_boxes=True)
    assert out["num_faces"] == [2]
    x0, _, x1, _ = out["face_boxes"][0]
    assert x1 < 300 and x1 - x0 > 80  # the big face on the left, not the smaller copy


class CascadeSpy:
    """Wraps the Haar cascade to record the smallest window of each detection pass."""

    def __init__(self, cascade) -> None:
        self.cascade, self.min_sizes = cascade, []

    def detectMultiScale3(self, image, **kwargs):  # noqa: N802 (OpenCV's name)
        self.min_sizes.append(kwargs["minSize"][0])
        return self.cascade.detectMultiScale3(image, **kwargs)


@pytest.mark.parametrize("head_side, passes", [(400, 1), (200, 2)])
def test_large_faces_are_searched_first_and_small_ones_still_found(face_rgb, monkeypatch, head_side, passes):
    from emoreply.emotion_cnn import image_processing_emotion_cnn as module

    frame = np.full((480, 640, 3), 200, np.uint8)  # the head pasted at two sizes: face 125 px or 62 px
    frame[40 : 40 + head_side, 120 : 120 + head_side] = np.asarray(
        Image.fromarray(face_rgb[0:300, 75:375]).resize((head_side, head_side))
    )
    spy = CascadeSpy(module._face_cascade())
    monkeypatch.setattr(module, "_face_cascade", lambda: spy)
    gray = module.to_gray_uint8(frame)
    boxes = processor.detect_faces(gray)
    # Frame 640x480 detected at 320x240: first pass windows >= 15% of 240 px, then >= 24 px.
    assert spy.min_sizes == [36, 24][:passes]
    assert len(boxes) == 1 and boxes[0][0] > 120 and boxes[0][2] < 120 + head_side
    single_pass = EmotionCNNImageProcessor(large_face_fraction=0)
    if passes == 2:  # no large face: the second pass is the full search, same answer as a single pass
        assert boxes == single_pass.detect_faces(gray)


@pytest.mark.parametrize(
    "bad",
    [{"min_face_fraction": 0}, {"large_face_fraction": 1.5}, {"detection_size": 10}, {"image_std": 0}],
)
def test_processor_settings_are_validated(bad):
    with pytest.raises(ValueError, match="must be in|Invalid processor settings"):
        EmotionCNNImageProcessor(**bad)


def test_fer_sized_faces_skip_detection():
    face = np.random.default_rng(0).integers(0, 255, (48, 48), dtype=np.uint8)
    out = processor(face, return_face_boxes=True)
    assert out["face_boxes"] == [(0, 0, 48, 48)]
    expected = (torch.from_numpy(face).float() / 255 - processor.image_mean) / processor.image_std
    torch.testing.assert_close(out["pixel_values"][0, 0], expected)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "CMYK", "I;16", "I", "F", "1"])
def test_every_pil_mode_is_accepted(face_rgb, mode):
    image = Image.fromarray(face_rgb)
    if mode in ("I;16", "I", "F"):
        gray = np.asarray(image.convert("L")).astype(np.float32)
        image = (
            Image.fromarray((gray * 257).astype(np.uint16)).convert(mode)
            if mode != "F"
            else Image.fromarray(gray / 255)
        )
    else:
        image = image.convert(mode)
    out = processor(image, return_face_boxes=True)
    assert out["pixel_values"].shape == (1, 1, 48, 48) and torch.isfinite(out["pixel_values"]).all()
    if mode not in ("1",):  # a 1-bit photo has no face left to find
        assert out["face_found"] == [True], mode


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((48, 48, 1), np.uint8),
        np.zeros((3, 48, 48), np.float32),
        np.zeros((48, 48, 4), np.uint16),
        np.zeros((100, 80), np.float64),
        torch.zeros(48, 48, 3),
    ],
)
def test_array_layouts_and_dtypes(array):
    out = processor(array, return_face_boxes=True)
    assert out["pixel_values"].shape == (1, 1, 48, 48)


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (np.zeros((0, 0), np.uint8), ValueError, "empty"),
        (np.zeros((10,), np.uint8), ValueError, "Expected an image"),
        (np.zeros((48, 48, 5), np.uint8), ValueError, "channels"),
        (np.full((48, 48), np.nan, np.float32), ValueError, "NaN"),
        (np.full((48, 48), 1e300, np.float64), ValueError, "out-of-range"),
        (np.broadcast_to(np.uint8(0), (10_000, 10_000)), ImageTooLargeError, "limit is 50 MP"),
    ],
)
def test_bad_arrays_get_clear_errors(bad, error, match):
    with pytest.raises(error, match=match):
        processor(bad)


def test_tiny_image_has_no_face():
    out = processor(Image.new("RGB", (1, 1)), return_face_boxes=True)
    assert out["face_found"] == [False]


def test_reader_reads_paths_bytes_and_images(tiny_emotion_model_dir, face_rgb, tmp_path):
    reader = EmotionReader.from_pretrained(tiny_emotion_model_dir)
    path = tmp_path / "face.jpg"
    Image.fromarray(face_rgb).save(path)
    for source in (face_rgb, Image.fromarray(face_rgb), path, str(path), path.read_bytes()):
        reading = reader.read(source)
        assert reading.face_found and reading.num_faces == 1
        assert list(reading.probabilities) == list(EMOTIONS)
        assert sum(reading.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert reading.emotion == max(reading.probabilities, key=reading.probabilities.get)
        assert reading.emotion in reading.message
    none = reader.read(np.full((240, 320), 90, np.uint8))
    assert not none.face_found and none.probabilities == {} and none.message == "No face found"


def test_reader_batch_mixes_faces_and_no_faces(tiny_emotion_model_dir, face_rgb):
    reader = EmotionReader.from_pretrained(tiny_emotion_model_dir)
    readings = reader.read_batch([face_rgb, np.zeros((300, 300), np.uint8), face_rgb])
    assert [r.face_found for r in readings] == [True, False, True]
    assert readings[0].probabilities == pytest.approx(readings[2].probabilities)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "Could not read"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "Could not read"),
        (b"%PDF-1.4 not an image", "Could not read"),
        (png_header_only(10_000, 10_000), "limit is 50 MP"),
    ],
)
def test_reader_rejects_unreadable_or_huge_uploads(tiny_emotion_model_dir, data, match):
    reader = EmotionReader.from_pretrained(tiny_emotion_model_dir)
    with pytest.raises(ValueError, match=match):
        reader.read(data)


def test_a_huge_file_and_a_huge_array_are_refused_alike():
    """One limit, one error, one wording: from a file's header (load_image) and from an array (the processor)."""
    from emoreply.loading import load_image

    errors = []
    huge_array = np.broadcast_to(np.uint8(0), (6_000, 10_000))
    for refuse in (lambda: load_image(png_header_only(10_000, 6_000)), lambda: processor(huge_array)):
        with pytest.raises(ImageTooLargeError) as info:
            refuse()
        errors.append(str(info.value))
    assert errors[0] == errors[1] == "The image is 10000x6000 (60 MP); the limit is 50 MP. Please resize it first."


def test_reader_rejects_truncated_jpeg_and_missing_file(tiny_emotion_model_dir, face_rgb, tmp_path):
    reader = EmotionReader.from_pretrained(tiny_emotion_model_dir)
    buffer = io.BytesIO()
    Image.fromarray(face_rgb).save(buffer, "JPEG")
    with pytest.raises(ValueError, match="Could not read"):
        reader.read(buffer.getvalue()[:500])
    with pytest.raises(ValueError, match="No image file"):
        reader.read(tmp_path / "nope.png")
    with pytest.raises(ValueError, match="Cannot read an image"):
        reader.read(12345)


def test_missing_or_corrupt_weights_get_clear_errors(tiny_emotion_model_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="No emotion model folder"):
        EmotionReader.from_pretrained(tmp_path / "missing")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_emotion_model_dir.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ModelLoadError, match="Could not load the emotion model from folder"):
        EmotionReader.from_pretrained(broken)
    (broken / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="missing config.json"):
        EmotionReader.from_pretrained(broken)


def test_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="is the network reachable"):
        EmotionReader.from_pretrained("emoreply/not-cached-anywhere")


def test_bundled_model_loads_offline_and_reads_a_face(face_rgb):
    assert (DEFAULT_EMOTION_MODEL / "model.safetensors").stat().st_size < 5_000_000
    reader = EmotionReader.from_pretrained()
    reading = reader.read(face_rgb)
    assert reading.face_found and reading.emotion in EMOTIONS
    assert reader.model.config.id2label[3] == "happy"


def test_unreachable_hub_fails_at_once_without_trying_to_download(monkeypatch):
    from huggingface_hub import constants

    from emoreply import loading

    def no_network(address, timeout):  # the one network call: the probe's TCP connection
        raise OSError("Name or service not known")

    calls = []
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(loading.socket, "create_connection", no_network)
    with pytest.raises(ModelLoadError, match="unreachable .*not in the local cache"):
        loading.load_pretrained(calls.append, "someone/not-cached", "base model", ())
    assert calls == []  # no download attempted, so no retry loop
    monkeypatch.setattr(loading.socket, "create_connection", lambda address, timeout: contextlib.nullcontext())
    loading.load_pretrained(calls.append, "someone/not-cached", "base model", ())
    assert calls == ["someone/not-cached"]  # reachable: the real loader runs


def test_load_image_decodes_jpegs_at_a_reduced_scale(face_rgb):
    import io

    from PIL import Image

    from emoreply.loading import load_image

    data = io.BytesIO()
    Image.fromarray(face_rgb).save(data, "JPEG")
    assert load_image(data.getvalue(), draft_size=(100, 100)).size == (128, 128)  # 1/4: the smallest >= 100
    assert load_image(data.getvalue()).size == (512, 512)


def test_a_reading_of_several_faces_says_which_one_it_used():
    reading = EmotionReading(face_found=True, num_faces=3, probabilities={"happy": 1.0}, emotion="happy")
    assert reading.faces_note == "3 faces found; using the largest"  # the app's status line says the same
    assert reading.message == "happy (100%) (3 faces found; using the largest)"
    assert EmotionReading(face_found=True, num_faces=1, probabilities={"happy": 1.0}, emotion="happy").faces_note == ""
