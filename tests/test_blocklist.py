"""Blocked words (threats, insults) never reach a draft, whatever the model prefers."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from emoreply.reply import ReplyDrafter, compare
from emoreply.reply.blocklist import BLOCKED_PHRASES, blocked_token_ids, contains_blocked
from emoreply.reply.drafter import save_decoding_settings

MESSAGE = "Can you pick up milk on the way home?"


def test_contains_blocked_matches_whole_words_in_any_case() -> None:
    assert contains_blocked("I don't care! I'm going to KILL them all!")
    assert contains_blocked("I hate you.")
    assert not contains_blocked("He studied the skills of the killer whale.")  # pieces of longer words
    assert not contains_blocked("I hate yoghurt.")
    assert contains_blocked("I'm so fucking pissed!")  # inflected forms are listed: whole words only


@pytest.mark.parametrize("fixture", ["tiny_chat_tokenizer", "tiny_tokenizer"])
def test_token_ids_spell_every_phrase(fixture, request) -> None:
    tokenizer = request.getfixturevalue(fixture)
    spelled = {tokenizer.decode(ids).strip().lower() for ids in blocked_token_ids(tokenizer)}
    assert spelled == set(BLOCKED_PHRASES)


def eager_for(drafter: ReplyDrafter, phrase: str):
    """Make the model strongly prefer ``phrase``'s tokens, in order, from its next forward call on
    (a hook on its output layer; the phrase repeats)."""
    ids = drafter.tokenizer(phrase, add_special_tokens=False)["input_ids"]
    calls = itertools.count()

    def boost(_module, _inputs, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.clone()
        logits[..., ids[next(calls) % len(ids)]] += 100.0
        return logits

    return drafter.model.get_output_embeddings().register_forward_hook(boost)


@pytest.mark.parametrize("guidance", [0.0, 1.5])
def test_a_model_that_wants_a_blocked_word_drafts_without_it(tiny_adapter_dir, guidance) -> None:
    drafter = ReplyDrafter.from_pretrained(tiny_adapter_dir, device="cpu", max_new_tokens=8)
    drafter.emotion_guidance = guidance
    hook = eager_for(drafter, " kill")
    try:
        unscreened = drafter.generate([drafter.prompt(MESSAGE, "angry")[0]], bad_words_ids=None)[0][0]
        assert contains_blocked(unscreened)  # the hook works: without the ban the word comes out
        drafts = [drafter.draft(MESSAGE, "angry").text, *drafter.sweep(MESSAGE).values()]
        drafts += drafter.draft(MESSAGE, "angry", num_candidates=3).candidates
        both = compare(drafter, drafter.base_drafter(), MESSAGE, "angry")  # one batch, adapter on and off
        drafts += [both.fine_tuned.text, both.base]
    finally:
        hook.remove()
    assert drafts and not any(contains_blocked(d) for d in drafts), drafts


def test_saved_decoding_settings_carry_the_ban(tiny_adapter_dir, tmp_path) -> None:
    drafter = ReplyDrafter.from_pretrained(tiny_adapter_dir, device="cpu")
    save_decoding_settings(tmp_path, drafter.model, drafter.tokenizer)
    saved = json.loads((tmp_path / "generation_config.json").read_text())["bad_words_ids"]
    assert saved == blocked_token_ids(drafter.tokenizer)
