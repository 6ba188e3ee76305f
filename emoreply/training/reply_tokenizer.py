"""The project's own SentencePiece-style Unigram tokenizer, for a T5 trained from scratch.

t5-small's 32k vocabulary was built for C4 and translation; DailyDialog needs far fewer pieces,
and the embedding matrix is most of a compact model (8,000 x 256 = 2M of its 7.6M parameters).
Ids follow T5: ``<pad>`` 0 (also the decoder start), ``</s>`` 1 (appended on encode), ``<unk>`` 2.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as in T5


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8000, max_piece_length: int = 16):
    """Train a Unigram tokenizer on ``texts``; returns a ``PreTrainedTokenizerFast`` for T5.

    The result round-trips through ``save_pretrained`` / ``AutoTokenizer.from_pretrained`` and
    appends ``</s>`` to every encoded text. Printable ASCII is always in the alphabet, so prompt
    punctuation (``|``, ``"``) and rarely seen symbols never become ``<unk>``. On a small corpus
    the vocabulary may come out smaller than ``vocab_size``.
    """
    tok = Tokenizer(models.Unigram())
    # NFKC folds full-width forms and ligatures as SentencePiece does; runs of spaces become one.
    tok.normalizer = normalizers.Sequence(
        [normalizers.Nmt(), normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        unk_token="<unk>",
        initial_alphabet=[c for c in string.printable if not c.isspace()],
        max_piece_length=max_piece_length,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    for i, token in enumerate(SPECIAL_TOKENS):  # T5's config assumes these ids
        if tok.token_to_id(token) != i:
            raise RuntimeError(f"{token} got id {tok.token_to_id(token)}, expected {i}")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=512,
        clean_up_tokenization_spaces=False,
    )
