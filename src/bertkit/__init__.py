"""bertkit: a complete BERT system on PyTorch.

The names users need, under the names ``transformers`` users already know::

    from bertkit import BertModel, Tokenizer
    tokenizer = Tokenizer.from_pretrained(path)
    model = BertModel.from_pretrained(path)
    outputs = model(**tokenizer(["a sentence"], return_tensors="pt"))
    outputs.last_hidden_state, outputs.pooler_output
"""

import importlib as _importlib
import typing as _typing

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
from bertkit.generation import GenerationConfig
from bertkit.model import BertConfig, EncoderOutput
from bertkit.model.causal_lm import BertLMHeadModel
from bertkit.model.encoder_decoder import EncoderDecoderConfig, EncoderDecoderModel
from bertkit.model.pretrained import (
    AlbertForMaskedLM,
    AlbertForMultipleChoice,
    AlbertForPreTraining,
    AlbertForQuestionAnswering,
    AlbertForSequenceClassification,
    AlbertForTokenClassification,
    AlbertModel,
    BertForMaskedLM,
    BertForMultipleChoice,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    DistilBertForMaskedLM,
    DistilBertForMultipleChoice,
    DistilBertForQuestionAnswering,
    DistilBertForSequenceClassification,
    DistilBertForTokenClassification,
    DistilBertModel,
    ElectraForMaskedLM,
    ElectraForMultipleChoice,
    ElectraForPreTraining,
    ElectraForQuestionAnswering,
    ElectraForSequenceClassification,
    ElectraForTokenClassification,
    ElectraModel,
    PreTrainedModel,
    RobertaForMaskedLM,
    RobertaForMultipleChoice,
    RobertaForQuestionAnswering,
    RobertaForSequenceClassification,
    RobertaForTokenClassification,
    RobertaModel,
)
from bertkit.resources.artifacts import fetch
from bertkit.tokenization import Encoding, Tokenizer, train_bpe, train_wordpiece
from bertkit.variants.albert import albert_base, albert_large, albert_xlarge, albert_xxlarge
from bertkit.variants.bert import (
    bert_base,
    bert_large,
    bert_medium,
    bert_mini,
    bert_small,
    bert_tiny,
)
from bertkit.variants.distilbert import distilbert_base
from bertkit.variants.electra import (
    electra_base_discriminator,
    electra_base_generator,
    electra_large_discriminator,
    electra_small_discriminator,
    electra_small_generator,
)
from bertkit.variants.roberta import roberta_base, roberta_large
from bertkit.version import __version__

if _typing.TYPE_CHECKING:
    from bertkit.analysis import (
        HeadStatistics,
        LinearProbe,
        ProbeResult,
        ProbeSettings,
        ProbeTask,
        build_task,
        head_importance,
        head_statistics,
        probe,
        prune_least_important,
    )
    from bertkit.runs.distill import DistillSettings, distill
    from bertkit.runs.finetune import (
        FinetuneConfig,
        finetune_classifier,
        finetune_ner,
        finetune_qa,
    )
    from bertkit.runs.pretrain import PretrainSettings, pretrain
    from bertkit.security.engines import (
        BackdoorTriggerScanner,
        BehaviorConsistencyValidator,
        ClassifierConfidenceAnalyzer,
        EmbeddingShiftDetector,
        ModelProvenanceChecker,
        scan,
    )

#: The runs behind the commands, by the module that defines them. They load on first use:
#: their modules pull in the data pipeline and the trainer, which tripled ``import bertkit``
#: (75 → 220 ms after torch) for every user who only loads a model.
_RUNS = {
    "DistillSettings": "bertkit.runs.distill", "distill": "bertkit.runs.distill",
    "PretrainSettings": "bertkit.runs.pretrain", "pretrain": "bertkit.runs.pretrain",
    "FinetuneConfig": "bertkit.runs.finetune",
    "finetune_classifier": "bertkit.runs.finetune",
    "finetune_ner": "bertkit.runs.finetune", "finetune_qa": "bertkit.runs.finetune",
}
#: The security engines under the system description's names (issue 20), loaded on use too.
_RUNS.update(dict.fromkeys(
    ["BackdoorTriggerScanner", "BehaviorConsistencyValidator", "ClassifierConfidenceAnalyzer",
     "EmbeddingShiftDetector", "ModelProvenanceChecker", "scan"], "bertkit.security.engines"))
#: What the layers know (issue 17): per-layer probes with control tasks, attention-head
#: statistics, head importance and pruning; loaded on use (they pull in the data readers).
_RUNS.update(dict.fromkeys(
    ["HeadStatistics", "LinearProbe", "ProbeResult", "ProbeSettings", "ProbeTask", "build_task",
     "head_importance", "head_statistics", "probe", "prune_least_important"],
    "bertkit.analysis"))


def __getattr__(name: str) -> _typing.Any:
    if name not in _RUNS:
        raise AttributeError(f"module 'bertkit' has no attribute {name!r}")
    value = getattr(_importlib.import_module(_RUNS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_RUNS))


__all__ = [
    "AlbertForMaskedLM",
    "AlbertForMultipleChoice",
    "AlbertForPreTraining",
    "AlbertForQuestionAnswering",
    "AlbertForSequenceClassification",
    "AlbertForTokenClassification",
    "AlbertModel",
    "ArtifactError",
    "BackdoorTriggerScanner",
    "BehaviorConsistencyValidator",
    "BertConfig",
    "BertForMaskedLM",
    "BertForMultipleChoice",
    "BertForNextSentencePrediction",
    "BertForPreTraining",
    "BertForQuestionAnswering",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertLMHeadModel",
    "BertModel",
    "BertkitError",
    "CheckpointError",
    "ClassifierConfidenceAnalyzer",
    "ConfigError",
    "DataFormatError",
    "DistilBertForMaskedLM",
    "DistilBertForMultipleChoice",
    "DistilBertForQuestionAnswering",
    "DistilBertForSequenceClassification",
    "DistilBertForTokenClassification",
    "DistilBertModel",
    "DistillSettings",
    "ElectraForMaskedLM",
    "ElectraForMultipleChoice",
    "ElectraForPreTraining",
    "ElectraForQuestionAnswering",
    "ElectraForSequenceClassification",
    "ElectraForTokenClassification",
    "ElectraModel",
    "EmbeddingShiftDetector",
    "EncoderDecoderConfig",
    "EncoderDecoderModel",
    "EncoderOutput",
    "Encoding",
    "FinetuneConfig",
    "GenerationConfig",
    "HeadStatistics",
    "InputError",
    "LinearProbe",
    "LoadReport",
    "ModelProvenanceChecker",
    "PreTrainedModel",
    "PretrainSettings",
    "ProbeResult",
    "ProbeSettings",
    "ProbeTask",
    "RobertaForMaskedLM",
    "RobertaForMultipleChoice",
    "RobertaForQuestionAnswering",
    "RobertaForSequenceClassification",
    "RobertaForTokenClassification",
    "RobertaModel",
    "Tokenizer",
    "TokenizerError",
    "UsageError",
    "__version__",
    "albert_base",
    "albert_large",
    "albert_xlarge",
    "albert_xxlarge",
    "bert_base",
    "bert_large",
    "bert_medium",
    "bert_mini",
    "bert_small",
    "bert_tiny",
    "build_task",
    "distilbert_base",
    "distill",
    "electra_base_discriminator",
    "electra_base_generator",
    "electra_large_discriminator",
    "electra_small_discriminator",
    "electra_small_generator",
    "fetch",
    "finetune_classifier",
    "finetune_ner",
    "finetune_qa",
    "head_importance",
    "head_statistics",
    "pretrain",
    "probe",
    "prune_least_important",
    "roberta_base",
    "roberta_large",
    "scan",
    "train_bpe",
    "train_wordpiece",
]
