"""Text → token ids for encoder models, built on the ``tokenizers`` library.

``Tokenizer`` is the one class users touch: load it with ``Tokenizer.from_pretrained(path)`` or
learn one with ``train_wordpiece(files)`` (BERT) or ``train_bpe(files)`` (RoBERTa), call it on
texts, get an ``Encoding`` (a dict of ``input_ids``, ``token_type_ids``, ``attention_mask``, …).
Modules, in data order: ``special_tokens`` (names of [CLS] & co.), ``casing`` (the
vocab-vs-lowercase guard), ``wordpiece`` (BERT's pipeline), ``bytelevel`` (RoBERTa's),
``encoding`` (the output mapping), ``files`` (HF-layout I/O), ``tokenizer`` (the class),
``training`` (vocabulary learning).
"""

from bertkit.tokenization.bytelevel import ROBERTA_SPECIAL_TOKENS, ByteLevelOptions
from bertkit.tokenization.encoding import Encoding
from bertkit.tokenization.special_tokens import BERT_SPECIAL_TOKENS, SpecialTokens
from bertkit.tokenization.tokenizer import Tokenizer
from bertkit.tokenization.training import train_bpe, train_wordpiece
from bertkit.tokenization.wordpiece import WordPieceOptions

__all__ = [
    "BERT_SPECIAL_TOKENS",
    "ROBERTA_SPECIAL_TOKENS",
    "ByteLevelOptions",
    "Encoding",
    "SpecialTokens",
    "Tokenizer",
    "WordPieceOptions",
    "train_bpe",
    "train_wordpiece",
]
