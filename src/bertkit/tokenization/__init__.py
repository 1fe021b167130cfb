"""Text → token ids for encoder models, built on the ``tokenizers`` library.

``Tokenizer`` is the one class users touch: load it with ``Tokenizer.from_pretrained(path)`` or
learn one with ``train_wordpiece(files)``, call it on texts, get an ``Encoding`` (a dict of
``input_ids``, ``token_type_ids``, ``attention_mask``, …). Modules, in data order:
``special_tokens`` (names of [CLS] & co.), ``casing`` (the vocab-vs-lowercase guard),
``wordpiece`` (BERT's pipeline), ``encoding`` (the output mapping), ``files`` (HF-layout I/O),
``tokenizer`` (the class), ``training`` (vocabulary learning).
"""

from bertkit.tokenization.encoding import Encoding
from bertkit.tokenization.special_tokens import BERT_SPECIAL_TOKENS, SpecialTokens
from bertkit.tokenization.tokenizer import Tokenizer
from bertkit.tokenization.training import train_wordpiece
from bertkit.tokenization.wordpiece import WordPieceOptions

__all__ = [
    "BERT_SPECIAL_TOKENS",
    "Encoding",
    "SpecialTokens",
    "Tokenizer",
    "WordPieceOptions",
    "train_wordpiece",
]
