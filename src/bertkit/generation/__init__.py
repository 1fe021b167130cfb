"""Generating target sequences with an encoder-decoder model: greedy, beam search, sampling.

``EncoderDecoderModel.generate(input_ids, attention_mask, num_beams=4)`` is the usual way
in; :func:`generate` takes any model with the :class:`Seq2SeqModel` methods.
"""

from bertkit.generation.config import GenerationConfig
from bertkit.generation.search import Seq2SeqModel, generate

__all__ = ["GenerationConfig", "Seq2SeqModel", "generate"]
