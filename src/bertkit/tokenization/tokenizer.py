"""The Tokenizer: texts in, model inputs out, with the call signature transformers users know.

It wraps one ``tokenizers.Tokenizer`` (the "backend", which holds the whole pipeline in Rust) and
adds what the backend lacks: per-call truncation/padding arguments with errors that name the
problem, tensors, the special-token ids looked up by name, and loading/saving in the Hugging Face
layout. The pipeline itself (WordPiece now, byte-level BPE later) is built elsewhere; this class
does not care which one it holds.

Hot path: one ``encode_batch`` call per batch (``encode_batch_fast``, which skips offset
tracking, when neither offsets nor word ids are wanted), then one list comprehension per output
field.

Truncation and padding are backend *state* in ``tokenizers``; they are set per call under a lock
(only when they change), so concurrent calls from several threads cannot mix their settings.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from tokenizers import Tokenizer as Backend

from bertkit.errors import TokenizerError
from bertkit.tokenization import files, wordpiece
from bertkit.tokenization.encoding import TENSOR_KINDS, Encoding, TensorPadding, assemble
from bertkit.tokenization.special_tokens import BERT_SPECIAL_TOKENS, SpecialTokens

TruncationArg = bool | Literal["longest_first", "only_first", "only_second", "do_not_truncate"]
PaddingArg = bool | Literal["longest", "max_length", "do_not_pad"]
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")


class Tokenizer:
    """A text → ids tokenizer for encoder models (BERT's WordPiece, or any ``tokenizers`` pipeline
    with a [CLS]/[SEP]-style post-processor).

    Build one with :meth:`from_pretrained` or :func:`~bertkit.tokenization.train_wordpiece`; the
    constructor is for code that already holds a ``tokenizers.Tokenizer``.
    """

    def __init__(self, backend: Backend, special_tokens: SpecialTokens = BERT_SPECIAL_TOKENS, *,
                 model_max_length: int = files.DEFAULT_MODEL_MAX_LENGTH):
        if model_max_length < 1:
            raise TokenizerError(f"model_max_length is {model_max_length}; expected >= 1")
        self._backend = backend
        self.special_tokens = special_tokens
        self.model_max_length = model_max_length
        self._special_ids: dict[str, int | None] = {
            name: backend.token_to_id(token)
            for name, token in zip(("pad", "unk", "cls", "sep", "mask"),
                                   special_tokens.as_list(), strict=True)
        }
        missing = [getattr(special_tokens, name) for name in ("pad", "unk", "cls", "sep")
                   if self._special_ids[name] is None]
        if missing:
            raise TokenizerError(f"the vocabulary lacks the special token(s) {missing}; expected "
                                 f"all of {special_tokens.as_list()[:4]} (the mask token is "
                                 "optional)")
        self._lock = threading.Lock()
        backend.no_truncation()
        backend.no_padding()
        self._settings: tuple[Any, Any] | None = (None, None)

    # ------------------------------------------------------------------ loading and saving

    @classmethod
    def from_pretrained(cls, path: str | Path, *, do_lower_case: bool | None = None,
                        model_max_length: int | None = None) -> Tokenizer:
        """Load from a model directory (tokenizer.json and/or vocab.txt + tokenizer_config.json)
        or from the path of a tokenizer.json or vocab.txt.

        Warns when the casing setting contradicts the vocabulary's content; ``do_lower_case``
        overrides the files.
        """
        parts = files.load(path, do_lower_case=do_lower_case, model_max_length=model_max_length)
        try:
            return cls(parts.backend, parts.special, model_max_length=parts.model_max_length)
        except TokenizerError as err:  # a special token missing: name the files that lack it
            raise TokenizerError(f"{path}: {err}") from None

    def save_pretrained(self, directory: str | Path) -> list[Path]:
        """Write tokenizer.json, tokenizer_config.json (+ vocab.txt for WordPiece) atomically;
        return the paths written. transformers' ``AutoTokenizer`` can load the result."""
        with self._lock:
            return files.save(directory, self._backend, self.special_tokens,
                              self.model_max_length)

    # ------------------------------------------------------------------ encoding

    def __call__(
        self,
        texts: str | Sequence[str] | Sequence[Sequence[str]],
        text_pairs: str | Sequence[str] | Sequence[Sequence[str]] | None = None,
        *,
        truncation: TruncationArg = False,
        max_length: int | None = None,
        padding: PaddingArg = False,
        add_special_tokens: bool = True,
        return_tensors: Literal["pt", "np"] | None = None,
        return_offsets_mapping: bool = False,
        return_special_tokens_mask: bool = False,
        return_word_ids: bool = False,
        pad_to_multiple_of: int | None = None,
        is_split_into_words: bool = False,
    ) -> Encoding:
        """Tokenize one text (or pair) or a batch into model inputs.

        A single text gives flat lists, a list gives one list per text; ``return_tensors`` gives
        ``(B, T)`` arrays either way. ``truncation=True`` means ``"longest_first"`` at
        ``max_length`` (default :attr:`model_max_length`); ``padding=True`` pads to the longest
        sequence in the batch, ``"max_length"`` to ``max_length``. With
        ``is_split_into_words`` each text is a list of words (for word-level labels, e.g. NER).
        """
        single, batch, pairs = self._normalise_inputs(texts, text_pairs, is_split_into_words)
        if return_tensors not in TENSOR_KINDS:
            raise TokenizerError(f"return_tensors={return_tensors!r}; expected None, 'pt' or 'np'")
        is_pair = pairs is not None
        trunc = self._truncation_setting(truncation, max_length, is_pair, add_special_tokens)
        pad = self._padding_setting(padding, max_length, pad_to_multiple_of)
        inputs: list[Any] = batch if pairs is None else list(zip(batch, pairs, strict=True))
        # encode_batch_fast skips offset tracking (~10 % faster) but then also loses word ids.
        tracked = return_offsets_mapping or return_word_ids
        encode = (self._backend.encode_batch if tracked  # (no _fast before tokenizers 0.20.1)
                  else getattr(self._backend, "encode_batch_fast", self._backend.encode_batch))
        # Tensors are padded after the fact, in one vectorised step (see encoding.assemble);
        # lists are padded by the backend.
        backend_pad = pad if return_tensors is None else None
        tensor_pad = (TensorPadding(pad[0], pad[1], self.pad_token_id)
                      if pad is not None and return_tensors is not None else None)
        with self._lock:
            self._configure(trunc, backend_pad)
            try:
                encodings = encode(inputs, is_pretokenized=is_split_into_words,
                                   add_special_tokens=add_special_tokens)
            except Exception as err:  # tokenizers raises bare Exception / TypeError
                raise self._explain_failure(err, batch, pairs, trunc, is_split_into_words,
                                            add_special_tokens) from None
        return assemble(encodings, single=single, pairs=is_pair,
                        padded=backend_pad is not None, return_tensors=return_tensors,
                        tensor_padding=tensor_pad,
                        offsets=return_offsets_mapping,
                        special_tokens_mask=return_special_tokens_mask, word_ids=return_word_ids)

    def encode(self, text: str, pair: str | None = None, *, add_special_tokens: bool = True,
               truncation: TruncationArg = False, max_length: int | None = None) -> list[int]:
        """Ids of one text (or pair), with [CLS]/[SEP] unless ``add_special_tokens=False``."""
        if not isinstance(text, str):
            raise TokenizerError(f"encode takes one text (str), got {type(text).__name__}; "
                                 "call the tokenizer itself for a batch")
        out = self(text, pair, add_special_tokens=add_special_tokens, truncation=truncation,
                   max_length=max_length)
        return out["input_ids"]

    def tokenize(self, text: str, pair: str | None = None, *,
                 add_special_tokens: bool = False) -> list[str]:
        """The token strings (WordPiece pieces with their ``##``) of one text."""
        if not isinstance(text, str):
            raise TokenizerError(f"tokenize takes one text (str), got {type(text).__name__}")
        with self._lock:
            self._configure(None, None)
            return self._backend.encode(text, pair, add_special_tokens=add_special_tokens).tokens

    # ------------------------------------------------------------------ decoding

    def decode(self, ids: Iterable[int] | Any, skip_special_tokens: bool = True) -> str:
        """Text from ids (a list, 1-D tensor or array); special tokens dropped by default."""
        return self._backend.decode(self._id_list(ids), skip_special_tokens=skip_special_tokens)

    def batch_decode(self, sequences: Iterable[Iterable[int]] | Any,
                     skip_special_tokens: bool = True) -> list[str]:
        """Texts from a batch of id sequences (a list of lists, or a 2-D tensor or array)."""
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        id_lists = [self._id_list(seq) for seq in sequences]
        return self._backend.decode_batch(id_lists, skip_special_tokens=skip_special_tokens)

    # ------------------------------------------------------------------ vocabulary

    @property
    def backend(self) -> Backend:
        """The underlying ``tokenizers.Tokenizer`` (its truncation/padding are reset per call)."""
        return self._backend

    @property
    def vocab_size(self) -> int:
        """Size of the model's vocabulary (what the embedding table must hold)."""
        return self._backend.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        """Vocabulary size including tokens added after training."""
        return self._backend.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        """A fresh token → id dict (including added tokens)."""
        return self._backend.get_vocab(with_added_tokens=True)

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Id of each token; a token outside the vocabulary gets the unknown token's id."""
        unk = self.unk_token_id
        lookup = self._backend.token_to_id
        if isinstance(tokens, str):
            found = lookup(tokens)
            return unk if found is None else found
        return [unk if (found := lookup(tok)) is None else found for tok in tokens]

    def convert_ids_to_tokens(self, ids: int | Iterable[int] | Any,
                              skip_special_tokens: bool = False) -> str | list[str]:
        """Token string of each id; an id outside the vocabulary is an error."""
        if isinstance(ids, int) or (hasattr(ids, "ndim") and ids.ndim == 0):
            return self._token_of(int(ids))
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._token_of(i) for i in self._id_list(ids) if i not in special]

    # ------------------------------------------------------------------ special tokens

    @property
    def pad_token_id(self) -> int:
        return self._special_ids["pad"]  # type: ignore[return-value]  # checked in __init__

    @property
    def unk_token_id(self) -> int:
        return self._special_ids["unk"]  # type: ignore[return-value]

    @property
    def cls_token_id(self) -> int:
        return self._special_ids["cls"]  # type: ignore[return-value]

    @property
    def sep_token_id(self) -> int:
        return self._special_ids["sep"]  # type: ignore[return-value]

    @property
    def mask_token_id(self) -> int | None:
        """``None`` when the vocabulary has no mask token (then it cannot do masked LM)."""
        return self._special_ids["mask"]

    @property
    def pad_token(self) -> str:
        return self.special_tokens.pad

    @property
    def unk_token(self) -> str:
        return self.special_tokens.unk

    @property
    def cls_token(self) -> str:
        return self.special_tokens.cls

    @property
    def sep_token(self) -> str:
        return self.special_tokens.sep

    @property
    def mask_token(self) -> str:
        return self.special_tokens.mask

    @property
    def all_special_ids(self) -> list[int]:
        return [i for i in self._special_ids.values() if i is not None]

    @property
    def do_lower_case(self) -> bool | None:
        """Whether the pipeline lower-cases (``None`` if it is not a WordPiece pipeline)."""
        options = wordpiece.describe(self._backend)
        return None if options is None else options.lowercase

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many tokens the template adds: 2 for one text, 3 for a pair (BERT)."""
        return self._backend.num_special_tokens_to_add(pair)

    def __repr__(self) -> str:
        options = wordpiece.describe(self._backend)
        kind = "WordPiece" if options is not None else type(self._backend.model).__name__
        casing = "" if options is None else f", lowercase={options.lowercase}"
        return (f"Tokenizer({kind}, vocab_size={self.vocab_size}{casing}, "
                f"model_max_length={self.model_max_length})")

    # ------------------------------------------------------------------ internals

    def _normalise_inputs(self, texts: Any, text_pairs: Any, split: bool
                          ) -> tuple[bool, list[Any], list[Any] | None]:
        """Return (single?, batch, pairs-or-None) with a clear error for anything else."""

        def is_one(value: Any) -> bool:
            if split:
                return isinstance(value, (list, tuple)) and (
                    not value or isinstance(value[0], str))
            return isinstance(value, str)

        single = is_one(texts)
        if single:
            batch = [texts]
        elif isinstance(texts, (list, tuple)):
            batch = list(texts)
        elif texts is None or isinstance(texts, (bytes, int, float)):
            raise TokenizerError(
                f"texts must be a str or a list of str, got {type(texts).__name__}")
        else:
            batch = list(texts)
        if text_pairs is None:
            return single, batch, None
        if single:
            if not is_one(text_pairs):
                raise TokenizerError("a single text needs a single text_pair, got "
                                     f"{type(text_pairs).__name__}")
            return True, batch, [text_pairs]
        if is_one(text_pairs) or not isinstance(text_pairs, (list, tuple)):
            raise TokenizerError(f"a batch of {len(batch)} texts needs a list of {len(batch)} "
                                 f"text_pairs, got {type(text_pairs).__name__}")
        if len(text_pairs) != len(batch):
            raise TokenizerError(f"got {len(batch)} texts but {len(text_pairs)} text_pairs; "
                                 "expected one pair per text")
        return False, batch, list(text_pairs)

    def _truncation_setting(self, truncation: Any, max_length: int | None, is_pair: bool,
                            add_special: bool) -> tuple[str, int] | None:
        if truncation is False or truncation is None or truncation == "do_not_truncate":
            return None
        strategy = "longest_first" if truncation is True else truncation
        if strategy not in TRUNCATION_STRATEGIES:
            raise TokenizerError(f"truncation={truncation!r}; expected True, False or one of "
                                 f"{list(TRUNCATION_STRATEGIES)}")
        if strategy != "longest_first" and not is_pair:
            raise TokenizerError(f"truncation={strategy!r} needs text pairs; a single text "
                                 "is truncated with truncation=True")
        length = self.model_max_length if max_length is None else max_length
        if not isinstance(length, int) or isinstance(length, bool):
            raise TokenizerError(f"max_length={max_length!r}; expected an int")
        n_special = self._backend.num_special_tokens_to_add(is_pair) if add_special else 0
        if length < n_special or (strategy != "longest_first" and length <= n_special):
            room = "is smaller than" if length < n_special else "leaves no room beyond"
            raise TokenizerError(
                f"max_length={length} {room} the {n_special} special tokens every "
                f"{'pair' if is_pair else 'text'} gets; use max_length > {n_special}"
            )
        return strategy, length

    def _padding_setting(self, padding: Any, max_length: int | None,
                         multiple: int | None) -> tuple[int | None, int | None] | None:
        if multiple is not None and (not isinstance(multiple, int) or multiple < 1):
            raise TokenizerError(f"pad_to_multiple_of={multiple!r}; expected a positive int")
        if padding is False or padding is None or padding == "do_not_pad":
            return None
        if padding is True or padding == "longest":
            return None, multiple
        if padding == "max_length":
            length = self.model_max_length if max_length is None else max_length
            if not isinstance(length, int) or length < 1:
                raise TokenizerError(f"max_length={length!r}; expected a positive int to pad to")
            return length, multiple
        raise TokenizerError(f"padding={padding!r}; expected True, False, 'longest' or "
                             "'max_length'")

    def _configure(self, trunc: tuple[str, int] | None,
                   pad: tuple[int | None, int | None] | None) -> None:
        """Apply truncation/padding to the backend, only when they differ from the last call.
        Must hold ``self._lock``."""
        if self._settings == (trunc, pad):
            return
        backend = self._backend
        if trunc is None:
            backend.no_truncation()
        else:
            backend.enable_truncation(trunc[1], stride=0, strategy=trunc[0], direction="right")
        if pad is None:
            backend.no_padding()
        else:
            backend.enable_padding(direction="right", pad_id=self.pad_token_id, pad_type_id=0,
                                   pad_token=self.special_tokens.pad, length=pad[0],
                                   pad_to_multiple_of=pad[1])
        self._settings = (trunc, pad)

    def _explain_failure(self, err: Exception, batch: list[Any], pairs: list[Any] | None,
                         trunc: tuple[str, int] | None, split: bool,
                         add_special: bool) -> TokenizerError:
        """Turn a backend failure into an error naming the offending item. Holds the lock."""
        kind = "list of words" if split else "str"
        for index, item in enumerate(batch):
            for side, value in (("text", item), ("text_pair", None if pairs is None
                                                  else pairs[index])):
                if side == "text_pair" and pairs is None:
                    continue
                ok = (isinstance(value, (list, tuple)) and all(isinstance(w, str) for w in value)
                      if split else isinstance(value, str))
                if not ok:
                    return TokenizerError(f"{side} {index} is {type(value).__name__}; expected "
                                          f"a {kind}")
        if trunc is not None and pairs is not None and "runcat" in str(err):
            self._configure(None, None)
            lengths = self._backend.encode_batch_fast(list(zip(batch, pairs, strict=True)),
                                                      is_pretokenized=split,
                                                      add_special_tokens=False)
            strategy, max_length = trunc
            n_special = self._backend.num_special_tokens_to_add(True) if add_special else 0
            for index, enc in enumerate(lengths):
                first = sum(1 for s in enc.sequence_ids if s == 0)
                second = len(enc.ids) - first
                kept, cut = (second, "first") if strategy == "only_first" else (first, "second")
                # tokenizers refuses a cut that would leave the cut sequence empty, too
                if first + second + n_special > max_length and kept + n_special >= max_length:
                    kept_name = "second" if cut == "first" else "first"
                    return TokenizerError(
                        f"pair {index}: truncation={strategy!r} cannot fit max_length="
                        f"{max_length}: the {kept_name} sequence, which must stay whole, has "
                        f"{kept} tokens plus {n_special} special tokens, and the {cut} sequence "
                        f"({first + second - kept} tokens) cannot lose enough without vanishing; "
                        "raise max_length or use truncation='longest_first'"
                    )
        return TokenizerError(f"tokenization failed: {err}")

    def _id_list(self, ids: Any) -> list[int]:
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if isinstance(ids, int):
            ids = [ids]
        ids = list(ids)
        if ids and not all(isinstance(i, int) for i in ids):
            raise TokenizerError("expected a flat sequence of int ids; for a batch use "
                                 "batch_decode")
        size = len(self)
        bad = [i for i in ids if not 0 <= i < size]
        if bad:
            raise TokenizerError(f"ids {bad[:5]} are outside the vocabulary (0..{size - 1})")
        return ids

    def _token_of(self, index: int) -> str:
        token = self._backend.id_to_token(index)
        if token is None:
            raise TokenizerError(f"id {index} is outside the vocabulary (0..{len(self) - 1})")
        return token
