"""Offsets point back into the original text: ``text[start:end]`` is the piece (without ``##``),
up to what the normalizer did (lower-casing, accent stripping)."""

from __future__ import annotations

import unicodedata

import pytest

from bertkit.tokenization import Tokenizer

pytestmark = pytest.mark.needs_artifacts


def normalise(span: str) -> str:
    """What uncased BERT's normalizer does to a span: drop control/format characters (the real
    lines hold stray C1 controls such as U+0092, a mis-decoded apostrophe), NUL and U+FFFD,
    lower-case, then drop accents."""
    kept = "".join(ch for ch in span if unicodedata.category(ch) not in ("Cc", "Cf")
                   and ch != "\ufffd")
    decomposed = unicodedata.normalize("NFD", kept.lower())
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


def test_offsets_recover_every_piece(minilm_dir, real_lines):
    tok = Tokenizer.from_pretrained(minilm_dir)
    texts = [*real_lines, "Café naïve Ångström", "中文字符 and 日本語", "un[MASK]able"]
    out = tok(texts, return_offsets_mapping=True, return_special_tokens_mask=True)
    checked = 0
    for text, ids, offsets, special in zip(texts, out.input_ids, out.offset_mapping,
                                           out.special_tokens_mask, strict=True):
        pieces = tok.convert_ids_to_tokens(ids)
        for piece, (start, end), is_special in zip(pieces, offsets, special, strict=True):
            if is_special:
                assert (start, end) == (0, 0)
                continue
            assert 0 <= start < end <= len(text), (text, piece)
            if piece in (tok.unk_token, tok.mask_token):  # no spelling to compare with
                continue
            expected = piece.removeprefix("##")
            assert normalise(text[start:end]) == expected, (text, piece, text[start:end])
            checked += 1
    assert checked > 50_000
