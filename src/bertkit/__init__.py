"""bertkit: a complete BERT system on PyTorch.

The names users need, under the names ``transformers`` users already know::

    from bertkit import BertModel, Tokenizer
    tokenizer = Tokenizer.from_pretrained(path)
    model = BertModel.from_pretrained(path)
    outputs = model(**tokenizer(["a sentence"], return_tensors="pt"))
    outputs.last_hidden_state, outputs.pooler_output
"""

__version__ = "0.1.0"

from bertkit.artifacts import fetch
from bertkit.checkpoints.huggingface import LoadReport
from bertkit.errors import (
    ArtifactError,
    BertkitError,
    CheckpointError,
    ConfigError,
    DataFormatError,
    InputError,
    TokenizerError,
    UsageError,
)
from bertkit.model import BertConfig, EncoderOutput
from bertkit.pretrained import (
    BertForMaskedLM,
    BertForMultipleChoice,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    PreTrainedModel,
)
from bertkit.tokenization import Encoding, Tokenizer, train_wordpiece
from bertkit.variants.bert import (
    bert_base,
    bert_large,
    bert_medium,
    bert_mini,
    bert_small,
    bert_tiny,
)

__all__ = [
    "ArtifactError",
    "BertConfig",
    "BertForMaskedLM",
    "BertForMultipleChoice",
    "BertForNextSentencePrediction",
    "BertForPreTraining",
    "BertForQuestionAnswering",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertModel",
    "BertkitError",
    "CheckpointError",
    "ConfigError",
    "DataFormatError",
    "EncoderOutput",
    "Encoding",
    "InputError",
    "LoadReport",
    "PreTrainedModel",
    "Tokenizer",
    "TokenizerError",
    "UsageError",
    "__version__",
    "bert_base",
    "bert_large",
    "bert_medium",
    "bert_mini",
    "bert_small",
    "bert_tiny",
    "fetch",
    "train_wordpiece",
]
