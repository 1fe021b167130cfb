"""The public API is a deliberate list: adding or removing a name is a visible change."""

from __future__ import annotations

import types

import bertkit

EXPECTED = {
    "ArtifactError", "BertConfig", "BertForMaskedLM", "BertForMultipleChoice",
    "BertForNextSentencePrediction", "BertForPreTraining", "BertForQuestionAnswering",
    "BertForSequenceClassification", "BertForTokenClassification", "BertModel", "BertkitError",
    "CheckpointError", "ConfigError", "DataFormatError", "Encoding", "EncoderOutput",
    "InputError", "LoadReport", "PreTrainedModel", "Tokenizer", "TokenizerError", "UsageError",
    "__version__", "bert_base", "bert_large", "bert_medium", "bert_mini", "bert_small",
    "bert_tiny", "fetch", "train_wordpiece",
    # the other families (issue 6)
    "AlbertForMaskedLM", "AlbertForMultipleChoice", "AlbertForPreTraining",
    "AlbertForQuestionAnswering", "AlbertForSequenceClassification",
    "AlbertForTokenClassification", "AlbertModel", "DistilBertForMaskedLM",
    "DistilBertForMultipleChoice", "DistilBertForQuestionAnswering",
    "DistilBertForSequenceClassification", "DistilBertForTokenClassification",
    "DistilBertModel", "ElectraForMaskedLM", "ElectraForMultipleChoice", "ElectraForPreTraining",
    "ElectraForQuestionAnswering", "ElectraForSequenceClassification",
    "ElectraForTokenClassification", "ElectraModel", "RobertaForMaskedLM",
    "RobertaForMultipleChoice", "RobertaForQuestionAnswering",
    "RobertaForSequenceClassification", "RobertaForTokenClassification", "RobertaModel",
    "albert_base", "albert_large", "albert_xlarge", "albert_xxlarge", "distilbert_base",
    "electra_base_discriminator", "electra_base_generator", "electra_large_discriminator",
    "electra_small_discriminator", "electra_small_generator", "roberta_base", "roberta_large",
    "train_bpe",
    # the runs behind the commands: pretrain (BERT / RoBERTa / ALBERT / ELECTRA), distil,
    # fine-tune
    "PretrainSettings", "pretrain", "DistillSettings", "distill", "FinetuneConfig",
    "finetune_classifier", "finetune_ner", "finetune_qa",
    # encoder-decoder models and generation (issue 16)
    "BertLMHeadModel", "EncoderDecoderConfig", "EncoderDecoderModel", "GenerationConfig",
    # the security engines under the system description's names (issue 20)
    "BackdoorTriggerScanner", "BehaviorConsistencyValidator", "ClassifierConfidenceAnalyzer",
    "EmbeddingShiftDetector", "ModelProvenanceChecker", "scan",
    # what the layers know: probes, attention heads, head pruning (issue 17)
    "HeadStatistics", "LinearProbe", "ProbeResult", "ProbeSettings", "ProbeTask", "build_task",
    "head_importance", "head_statistics", "probe", "prune_least_important",
}


def test_all_is_the_expected_list():
    assert set(bertkit.__all__) == EXPECTED
    assert len(bertkit.__all__) == len(EXPECTED)


def test_every_public_name_exists_and_is_documented():
    for name in bertkit.__all__:
        value = getattr(bertkit, name)
        if callable(value):
            assert value.__doc__, f"bertkit.{name} has no docstring"


def test_only_submodules_are_public_beyond_all():
    """Names outside ``__all__`` may only be bertkit's own submodules (imported by whoever used
    them first); a function or class there would be an accidental export."""
    extra = {name for name in dir(bertkit) if not name.startswith("_")} - set(bertkit.__all__)
    leaked = {name for name in extra
              if not (isinstance(getattr(bertkit, name), types.ModuleType)
                      and getattr(bertkit, name).__name__ == f"bertkit.{name}")}
    assert not leaked

