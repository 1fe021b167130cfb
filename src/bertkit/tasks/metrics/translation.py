"""Translation metrics from the field's reference library: sacreBLEU's BLEU and chrF.

Why sacreBLEU and not a hand-written BLEU: BLEU numbers are only comparable when tokenisation,
casing and smoothing are decided identically, and sacreBLEU's *signature* string records those
decisions (``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0``). Scores are
computed on detokenised text — what a user reads — with sacreBLEU's own tokeniser, never on
the model's word pieces.

Casing: bertkit's warm-start checkpoints (bert-tiny, MiniLM) are uncased, so their output is
lower case. ``lowercase=True`` scores case-insensitively and the signature says ``case:lc``;
compare only scores whose signatures match.

sacreBLEU is an optional extra (``pip install 'bertkit[translate]'``); it is imported when a
score is asked for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bertkit.errors import UsageError

__all__ = ["TranslationScores", "copy_source_baseline", "detokenize", "translation_scores"]

_SPACE_BEFORE = re.compile(r"\s+([.,;:!?)\]}%])")
_SPACE_AFTER = re.compile(r"([(\[{])\s+")
_JOINERS = re.compile(r"\s*([/'’])\s*")


@dataclass(frozen=True)
class TranslationScores:
    """Corpus BLEU and chrF (0–100) over ``sentences`` hypothesis/reference pairs."""

    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    sentences: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sacrebleu() -> Any:
    try:
        import sacrebleu
    except ImportError:
        raise UsageError("BLEU and chrF need sacreBLEU: pip install 'bertkit[translate]' "
                         "(sacrebleu==2.6.0)") from None
    return sacrebleu


def translation_scores(hypotheses: Sequence[str], references: Sequence[str], *,
                       lowercase: bool = False, tokenize: str = "13a") -> TranslationScores:
    """Corpus-level BLEU (sacreBLEU defaults: 13a tokeniser, exponential smoothing) and chrF
    (character 6-grams, β = 2) of detokenised ``hypotheses`` against one reference each.

    Raises:
        UsageError: the two lists differ in length or are empty; sacreBLEU is not installed.
    """
    if len(hypotheses) != len(references):
        raise UsageError(f"{len(hypotheses)} hypotheses for {len(references)} references; "
                         "expected one hypothesis per reference")
    if not references:
        raise UsageError("no sentences to score")
    sacrebleu = _sacrebleu()
    bleu = sacrebleu.metrics.BLEU(lowercase=lowercase, tokenize=tokenize)
    chrf = sacrebleu.metrics.CHRF(lowercase=lowercase)
    hyps, refs = [list(hypotheses)], [list(references)]
    bleu_score = bleu.corpus_score(hyps[0], refs)
    chrf_score = chrf.corpus_score(hyps[0], refs)
    return TranslationScores(round(bleu_score.score, 2), round(chrf_score.score, 2),
                             str(bleu.get_signature()), str(chrf.get_signature()),
                             len(references))


def copy_source_baseline(sources: Sequence[str], references: Sequence[str], *,
                         lowercase: bool = False) -> TranslationScores:
    """The copy-the-source baseline: the untranslated source scored as the translation.

    Not a straw man for package descriptions: names, versions and technical words (``SOCKS``,
    ``v4``, ``daemon``) pass through translation unchanged, so a model must beat this to have
    learnt anything beyond copying.
    """
    return translation_scores(sources, references, lowercase=lowercase)


def detokenize(text: str) -> str:
    """Undo the spaces WordPiece decoding puts around punctuation (``"daemon ( v4 ) , foo /
    bar"`` → ``"daemon (v4), foo/bar"``): a heuristic for reading; BLEU's 13a tokeniser and
    chrF (which ignores whitespace) barely depend on it."""
    text = _SPACE_BEFORE.sub(r"\1", text)
    text = _SPACE_AFTER.sub(r"\1", text)
    return _JOINERS.sub(r"\1", text).strip()
