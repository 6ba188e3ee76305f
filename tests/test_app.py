"""app.py handlers on real-looking inputs and bad inputs (no browser: the handlers are pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

import app
from emoreply import DISPLAY_NAMES, EMOTIONS
from emoreply.reader import EmotionReader
from emoreply.reply import ReplyDrafter


def last(steps):
    """The last of a streamed handler's steps: what the page ends with and an API client gets."""
    return list(steps)[-1]


@pytest.fixture(scope="module")
def models(tiny_emotion_model_dir, tiny_model_dir) -> app.Models:
    drafter = ReplyDrafter.from_pretrained(tiny_model_dir)
    return app.Models(
        EmotionReader.from_pretrained(tiny_emotion_model_dir), drafter, drafter.base_drafter(tiny_model_dir)
    )


def test_load_models_works_offline_and_reports_the_missing_base(tiny_emotion_model_dir, tiny_model_dir):
    models = app.load_models(str(tiny_emotion_model_dir), str(tiny_model_dir), "google-t5/t5-small")
    assert models.base is None and "base" in models.base_error.lower()
    base, tuned, draft, notice = last(app.draft_replies(models, "How is your day going?", "happy", None, ""))
    assert base.startswith("(base model unavailable)") and tuned == draft
    no_base = app.load_models(str(tiny_emotion_model_dir), str(tiny_model_dir), "none")
    assert no_base.base is None and no_base.base_error is None


def test_an_adapter_is_compared_with_its_own_base_offline(tiny_emotion_model_dir, tiny_adapter_dir):
    models = app.load_models(str(tiny_emotion_model_dir), str(tiny_adapter_dir))
    assert models.base is not None and models.base.model is models.drafter.model and not models.base.use_adapter
    base, tuned, draft, notice = last(app.draft_replies(models, "How is your day going?", "sad", None, ""))
    assert isinstance(base, str) and not base.startswith("(base") and tuned == draft and "Sad" in notice


def test_command_line_and_environment_pick_the_models(monkeypatch, tiny_emotion_model_dir, tiny_model_dir):
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    args = app.parse_args([])
    assert args.reply_model == "smollm2" and args.base_model is None and args.precision == "fp32"
    assert app.parse_args(["--reply-model", "t5"]).reply_model == "t5"
    monkeypatch.setenv("EMOREPLY_PRECISION", "int8")
    monkeypatch.setenv("EMOREPLY_BASE_MODEL", "none")
    args = app.parse_args(["--reply-model", str(tiny_model_dir)])
    assert args.precision == "int8" and args.base_model == "none" and args.reply_model == str(tiny_model_dir)
    models = app.load_models(str(tiny_emotion_model_dir), args.reply_model, args.base_model, args.precision)
    assert isinstance(models.drafter.model.lm_head, Int8Linear)
    assert last(app.draft_replies(models, "How is your day going?", "happy", None, ""))[1]
    assert app.parse_args(["--precision", "bf16"]).precision == "bf16"


def test_an_unknown_precision_is_refused_with_the_choices(monkeypatch, tiny_emotion_model_dir, tiny_model_dir):
    with pytest.raises(SystemExit):
        app.parse_args(["--precision", "fp16"])
    monkeypatch.setenv("EMOREPLY_PRECISION", "fp16")  # argparse does not check an environment default
    with pytest.raises(ValueError, match="fp32, bf16, int8"):
        app.load_models(str(tiny_emotion_model_dir), str(tiny_model_dir), "none", app.parse_args([]).precision)


def test_read_face_boxes_the_face_and_gives_all_seven_probabilities(models, face_rgb):
    preview, probs, status, detected = app.read_face(models, face_rgb)
    assert preview.shape == face_rgb.shape and not np.array_equal(preview, face_rgb)  # the box is drawn
    assert set(probs) == {DISPLAY_NAMES[e] for e in EMOTIONS}
    assert detected in EMOTIONS and DISPLAY_NAMES[detected] in status


def test_read_face_without_a_face_or_picture_says_so(models):
    _, probs, status, detected = app.read_face(models, np.full((480, 640, 3), 120, np.uint8))
    assert probs == {} and detected is None and "No face found" in status
    _, _, status, detected = app.read_face(models, None)
    assert detected is None and "No picture yet" in status


def test_read_face_with_several_faces_uses_the_largest(models, two_faces):
    _, _, status, _ = app.read_face(models, two_faces)
    assert "faces found; using the largest" in status


def test_read_face_with_a_huge_or_broken_image_gives_a_message(models):
    huge = np.broadcast_to(np.uint8(0), (10_000, 10_000, 3))
    preview, probs, status, detected = app.read_face(models, huge)
    assert preview is None and probs == {} and detected is None and "limit" in status
    _, _, status, _ = app.read_face(models, np.zeros((10,), np.uint8))
    assert status.startswith("⚠️")


def test_emotion_choice_and_fallback():
    assert app.emotion_in_use("sad", "happy")[0] == "sad"
    assert app.emotion_in_use(app.FACE, "happy")[0] == "happy"
    emotion, why = app.emotion_in_use(app.FACE, None)
    assert emotion == app.NO_FACE_FALLBACK and "No face read" in why


def test_draft_replies_side_by_side_the_fine_tuned_draft_first(models):
    first, final = app.draft_replies(models, "How is your day going?", app.FACE, "happy", "Hi!\nHello.")
    base, tuned, draft, notice = final
    assert isinstance(base, str) and base and isinstance(tuned, str) and draft == tuned
    assert "read from your face" in notice and "Happy" in notice and app.BASE_FOLLOWS not in notice
    assert first == ("", tuned, tuned, notice + app.BASE_FOLLOWS)  # the base column waits, the draft does not
    assert base == models.base.draft("How is your day going?", "happy", ["Hi!", "Hello."]).text


@pytest.mark.parametrize("message", ["", "   \n "])
def test_empty_message_prompts_for_one(models, message):
    base, tuned, draft, notice = last(app.draft_replies(models, message, "happy", None, ""))
    assert (base, tuned, draft) == ("", "", "") and "empty" in notice


def test_huge_emoji_and_non_latin_messages(models):
    *_, notice = last(app.draft_replies(models, "word " * 4000, "sad", None, ""))
    assert "only its beginning was read" in notice
    for message in ("🎉🎉 we did it!! 🥳", "お元気ですか？", "Как дела?", "مرحبا"):
        base, tuned, draft, notice = last(app.draft_replies(models, message, "surprise", None, None))
        assert not notice.startswith("⚠️") and draft == tuned


def test_sweep_gives_one_reply_per_emotion(models):
    rows, notice = app.sweep_replies(models, "I got the job!!", "")
    assert [r[0] for r in rows] == [DISPLAY_NAMES[e] for e in EMOTIONS] and notice == ""
    rows, notice = app.sweep_replies(models, "", "")
    assert rows == [] and "empty" in notice


def test_a_client_gets_one_live_stream_at_a_time():
    clients = app.LiveClients(lease=1.5)
    clients.claim("10.0.0.1", "tab-a", now=0.0)
    clients.claim("10.0.0.1", "tab-a", now=1.0)  # its own next frame, or the page restarting the stream
    clients.claim("10.0.0.2", "tab-b", now=1.0)  # another client
    with pytest.raises(ValueError, match="already running in another tab or window of yours"):
        clients.claim("10.0.0.1", "tab-c", now=2.0)  # 1 s after tab-a's last frame: tab-a still runs
    clients.claim("10.0.0.1", "tab-c", now=2.6)  # tab-a sent nothing for 1.6 s: gone, tab-c may start
    with pytest.raises(ValueError):
        clients.claim("10.0.0.1", "tab-a", now=3.0)


def test_live_mode_smooths_over_frames_and_survives_no_face(models, face_rgb):
    label, status, state, detected = app.live_step(models, face_rgb, None)
    assert detected in EMOTIONS and state and set(label) == {DISPLAY_NAMES[e] for e in EMOTIONS}
    flipped = face_rgb[:, ::-1].copy()
    reading = models.reader.read(flipped)
    _, _, state2, _ = app.live_step(models, flipped, state)
    for e in EMOTIONS:  # exponential moving average of the two frames
        expected = (1 - app.LIVE_SMOOTHING) * state[e] + app.LIVE_SMOOTHING * reading.probabilities[e]
        assert state2[e] == pytest.approx(expected)
    _, status, state3, detected3 = app.live_step(models, np.zeros((240, 320, 3), np.uint8), state2)
    assert state3 is state2 and "No face" in status and detected3 == max(state2, key=state2.get)


def test_history_keeps_the_last_turns():
    assert app.parse_history("a\n\n b \nc\nd\ne\nf") == ["c", "d", "e", "f"]
    assert app.parse_history(None) == []


def test_build_demo_wires_the_api(models):
    demo = app.build_demo(models)
    names = {d.api_name for d in demo.fns.values()}
    assert {"read_face", "draft", "sweep", "live"} <= names


def test_uploads_are_read_bounded_and_16_bit_pictures_scaled_not_clipped(models, face_rgb):
    import io

    from PIL import Image

    big = io.BytesIO()
    Image.fromarray(face_rgb).resize((4096, 4096)).save(big, "JPEG")
    picture = app.open_picture(big.getvalue())
    assert max(picture.size) <= app.WORK_SIDE  # decoded at 1/2 scale (DCT), then shrunk
    gray16 = io.BytesIO()
    Image.fromarray(np.asarray(Image.fromarray(face_rgb).convert("L"), np.uint16) * 257).save(gray16, "PNG")
    picture = app.open_picture(gray16.getvalue())
    assert picture.mode == "L" and 60 < np.asarray(picture).mean() < 200  # not saturated to white
    preview, _, status, detected = app.read_face(models, gray16.getvalue())
    assert detected in EMOTIONS and preview.shape == (512, 512, 3)
    *_, status, _ = app.read_face(models, b"not a picture")
    assert status.startswith(app.WARNING) and "not a known image format" in status


def test_large_pictures_without_reduced_decoding_are_refused_from_the_header(models):
    from .test_app_server import png_header

    *_, status, _ = app.read_face(models, png_header(6000, 5000))  # 30 MP: would decode at full size
    assert status.startswith(app.WARNING)
    assert "6000x5000 (30 MP); a PNG is read at full size, and the limit for that is 24 MP" in status
    preview, *_ = app.read_face(models, png_header(4000, 5000))  # 20 MP passes the check (and holds no pixels)
    assert preview is None


def test_inputs_only_an_api_client_can_send_are_refused_in_words():
    for message, history, choice, words in [
        ("hi", None, None, "Unknown emotion None"),
        ("hi \ud800", "", "happy", "message holds a broken character"),
        ("hi", "\udfff", app.FACE, "earlier turns holds a broken character"),
        (["hi"], None, "sad", "must be text"),
    ]:
        with pytest.raises(ValueError, match=words):
            app.check_request(message, history, choice)
    app.check_request("hi", None)


def test_events_turn_warnings_into_gr_errors_with_the_words():
    import gradio as gr

    event = app.as_event(lambda x: (x, f"{app.WARNING} The message is empty."), 1)
    with pytest.raises(gr.Error) as refused:
        event(1)
    assert refused.value.message == "The message is empty."
    assert app.as_event(lambda x: (x, "fine"), 1)(2) == (2, "fine")
    stream = app.as_stream_event(lambda x: iter([(x, "first"), (x, f"{app.WARNING} Then this.")]), 1)(3)
    assert next(stream) == (3, "first")
    with pytest.raises(gr.Error, match="Then this"):
        next(stream)
    with pytest.raises(gr.Error, match="Unknown emotion"):
        app.as_event(lambda *a: a, 0, app.check_draft_request)("hi", "bogus", None, "")
