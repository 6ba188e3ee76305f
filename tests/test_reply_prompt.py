import pytest

from emoreply.constants import MAX_MESSAGE_CHARS
from emoreply.emotion_cnn import EMOTIONS
from emoreply.reply.prompt import build_prompt, fit_history, normalize_text, prepare_message


def test_prompt_format_is_pinned():
    # Changing these strings silently breaks every trained model: retrain if you must.
    assert build_prompt("How is your day going?", "happy") == 'emotion: happy | context: "How is your day going?"'
    assert build_prompt("How is your day going?", "Sad", ["Hi!", "Hello, Sam."]) == (
        'emotion: sad | context: "Hi!" | "Hello, Sam." | "How is your day going?"'
    )
    assert build_prompt("How is your day going?", None) == 'context: "How is your day going?"'
    assert build_prompt("ok", None, []) == 'context: "ok"'


def test_unknown_emotion_lists_valid_ones():
    with pytest.raises(ValueError, match="valid emotions are: " + ", ".join(EMOTIONS)):
        build_prompt("hi", "joyful")


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("Hello , how are you ?", "Hello, how are you?"),
        ("I ’ ll see you , it ’ s late .", "I'll see you, it's late."),
        ("We ’ Ve been busy . I ’ Ve got it", "We've been busy. I've got it"),
        ("Good.Let ' s go now .", "Good. Let's go now."),
        ('Say " cheese " .', 'Say "cheese".'),
        ("I got $ 500 , about 20 % more ( really ) !", "I got $500, about 20% more (really)!"),
        ("Wait ... what ? !", "Wait... what?!"),
        ("  lots   of \n space  ", "lots of space"),
        ("1,000 people :) ok", "1,000 people :) ok"),
        ("こんにちは 😀 世界", "こんにちは 😀 世界"),
    ],
)
def test_normalize_text(raw, clean):
    assert normalize_text(raw) == clean
    assert normalize_text(clean) == clean  # idempotent: the app may normalise twice


@pytest.mark.parametrize("empty", ["", "   ", "\n\t "])
def test_empty_message_is_rejected(empty):
    with pytest.raises(ValueError, match="empty"):
        prepare_message(empty)


def test_long_message_is_truncated_and_reported():
    short = prepare_message("Hello there 😀")
    assert short.text == "Hello there 😀" and not short.truncated
    long = prepare_message("word " * 4000)
    assert long.truncated and len(long.text) <= MAX_MESSAGE_CHARS and long.text.endswith("word")
    cjk = prepare_message("日本語" * 1000)  # no spaces: cut at the budget, not at a word
    assert cjk.truncated and len(cjk.text) == MAX_MESSAGE_CHARS


def test_fit_history_drops_oldest_turns_first():
    def count(s: str) -> int:
        return len(s.split())

    history = ["one two three four", "five six", "seven"]
    full = count(build_prompt("msg", "happy", history))
    assert fit_history("msg", "happy", history, count, full) == history
    assert fit_history("msg", "happy", history, count, full - 1) == ["five six", "seven"]
    assert fit_history("msg", "happy", history, count, 1) == []
