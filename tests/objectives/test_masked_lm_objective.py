"""The pretraining objective: sparse MLM (+ NSP) against the dense model loss, hand-computed
losses and accuracies, gradient equality, exact aggregation, padding, errors, and the trainer.

Oracles: ``BertForPreTraining(..., labels=, next_sentence_label=)`` (full logits at every
position, the ``transformers`` definition, itself parity-tested against ``transformers``), and
losses written out by hand on models whose head outputs are fixed by construction.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bertkit import BertConfig, BertForMaskedLM, BertForPreTraining
from bertkit.data.batch import Batch
from bertkit.errors import InputError, UsageError
from bertkit.objectives import (
    PAD_LOGIT,
    PreTrainingMetrics,
    PreTrainingObjective,
    evaluate,
    masked_lm_logits,
    pretraining_loss,
    pretraining_loss_fn,
    summarize,
)

VOCAB = 1000  # not a multiple of 64: the old padded decoder would have padded it


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny models: a second thread only adds contention on the shared 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_config(vocab_size: int = VOCAB, dropout: float = 0.0) -> BertConfig:
    return BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                      hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)


def make_batch(seed: int = 0, batch: int = 4, length: int = 24, rate: float = 0.2,
               vocab: int = VOCAB, nsp: bool = True, padded: bool = True) -> Batch:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, length), generator=g)
    attention = torch.ones_like(ids)
    if padded:  # ragged rows: padding must never be predicted nor change the loss
        for row in range(1, batch):
            attention[row, length - 3 * row:] = 0
    ids = ids.masked_fill(attention == 0, 0)
    chosen = (torch.rand(batch, length, generator=g) < rate) & attention.bool()
    chosen[:, 1] = True  # at least one prediction per row
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    ids = ids.masked_fill(chosen, 3)
    types = torch.zeros_like(ids)
    types[:, length // 2:] = 1
    types = types * attention
    pair = torch.randint(0, 2, (batch,), generator=g) if nsp else None
    return Batch(ids, types, attention, labels, pair)


def dense_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    out = model(batch.input_ids, batch.attention_mask, batch.token_type_ids,
                labels=batch.mlm_labels, next_sentence_label=batch.next_sentence_labels)
    return out.loss


@pytest.fixture
def model() -> BertForPreTraining:
    torch.manual_seed(0)
    return BertForPreTraining(tiny_config()).train()  # dropout 0: deterministic in train mode


# ---- equality with the dense computation -------------------------------------------------


def test_sparse_loss_equals_dense_loss(model):
    batch = make_batch()
    loss, metrics = pretraining_loss(model, batch)
    expected = dense_loss(model, batch)
    assert abs(loss.item() - expected.item()) < 1e-5
    assert abs((metrics["mlm_loss"] + metrics["nsp_loss"]).item() - expected.item()) < 1e-5


def test_gradients_equal_dense_gradients(model):
    batch = make_batch(seed=1)
    dense_loss(model, batch).backward()
    dense = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    loss, _ = PreTrainingObjective(model)(batch)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, dense[name], rtol=1e-4, atol=1e-6, msg=name)
    # The tied matrix gets both the embedding and the decoder gradient (not just one).
    assert model.bert.embeddings.word.weight.grad.abs().sum() > 0


def test_metrics_match_dense_logits(model):
    batch = make_batch(seed=2)
    _, metrics = pretraining_loss(model, batch)
    with torch.no_grad():
        out = model(batch.input_ids, batch.attention_mask, batch.token_type_ids)
    chosen = batch.mlm_labels != -100
    logits = out.prediction_logits[chosen]
    correct = (logits.argmax(-1) == batch.mlm_labels[chosen]).sum().item()
    assert metrics["mlm_count"].item() == chosen.sum().item()
    assert metrics["mlm_correct"].item() == correct
    nsp_correct = (out.seq_relationship_logits.argmax(-1) == batch.next_sentence_labels).sum()
    assert metrics["nsp_correct"].item() == nsp_correct.item()
    assert metrics["tokens"].item() == batch.attention_mask.sum().item()


# ---- hand-computed losses and accuracies -------------------------------------------------


def fixed_output_model(mlm_probs: list[float], nsp_probs: list[float]) -> BertForPreTraining:
    """A model whose MLM head gives every position the distribution ``mlm_probs`` and whose
    NSP head gives every sequence ``nsp_probs``, whatever the input: the transform is zeroed
    (LayerNorm of a constant row is its shift, set to 0), so the logits are the output bias."""
    model = BertForPreTraining(tiny_config(vocab_size=len(mlm_probs))).eval()
    with torch.no_grad():
        for module in (model.mlm.dense, model.nsp.linear):
            module.weight.zero_()
            module.bias.zero_()
        model.mlm.norm.bias.zero_()
        model.mlm.bias.copy_(torch.tensor(mlm_probs).log())
        model.nsp.linear.bias.copy_(torch.tensor(nsp_probs).log())
    return model


def test_hand_computed_loss_and_accuracy():
    model = fixed_output_model([0.5, 0.25, 0.125, 0.125], [0.8, 0.2])
    ids = torch.tensor([[1, 3, 2, 3, 1], [1, 3, 2, 2, 0]])
    labels = torch.tensor([[-100, 0, -100, 1, -100], [-100, 0, -100, -100, -100]])
    attention = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    batch = Batch(ids, torch.zeros_like(ids), attention, labels, torch.tensor([0, 1]))
    loss, m = pretraining_loss(model, batch)

    ln2 = math.log(2)
    # MLM: labels 0, 1, 0 under p = (1/2, 1/4, …): -ln p = ln2, 2 ln2, ln2; argmax is 0.
    assert m["mlm_count"].item() == 3
    assert m["mlm_loss_sum"].item() == pytest.approx(4 * ln2, abs=1e-5)
    assert m["mlm_loss"].item() == pytest.approx(4 * ln2 / 3, abs=1e-6)
    assert m["mlm_correct"].item() == 2
    assert m["mlm_accuracy"].item() == pytest.approx(2 / 3)
    # NSP: labels 0, 1 under p = (0.8, 0.2); argmax is 0.
    nsp = (-math.log(0.8) - math.log(0.2)) / 2
    assert m["nsp_loss"].item() == pytest.approx(nsp, abs=1e-6)
    assert m["nsp_accuracy"].item() == pytest.approx(0.5)
    assert loss.item() == pytest.approx(4 * ln2 / 3 + nsp, abs=1e-5)
    assert m["tokens"].item() == 9
    assert summarize(m)["perplexity"] == pytest.approx(math.exp(4 * ln2 / 3), rel=1e-5)


# ---- RoBERTa regime, empty masks, errors -------------------------------------------------


def test_mlm_only_without_nsp_labels(model):
    batch = make_batch(seed=3, nsp=False)
    loss, metrics = pretraining_loss(model, batch)
    with torch.no_grad():
        logits = model(batch.input_ids, batch.attention_mask,
                       batch.token_type_ids).prediction_logits
    expected = F.cross_entropy(logits.reshape(-1, VOCAB), batch.mlm_labels.reshape(-1))
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
    assert not any(name.startswith("nsp") for name in metrics)


def test_model_without_pooler_or_nsp_head():
    torch.manual_seed(0)
    mlm_model = BertForMaskedLM(tiny_config())  # RoBERTa-style: no pooler, no pair head
    batch = make_batch(seed=4, nsp=False)
    loss, _ = PreTrainingObjective(mlm_model)(batch)
    dense = mlm_model(batch.input_ids, batch.attention_mask, batch.token_type_ids,
                      labels=batch.mlm_labels).loss
    assert loss.item() == pytest.approx(dense.item(), abs=1e-5)
    with pytest.raises(UsageError, match="no NSP head"):
        PreTrainingObjective(mlm_model)(make_batch(seed=4, nsp=True))


def test_batch_without_masked_positions_gives_zero_not_nan(model):
    batch = make_batch(seed=5)
    batch.mlm_labels = torch.full_like(batch.mlm_labels, -100)
    loss, metrics = pretraining_loss(model, batch)
    assert torch.isfinite(loss)
    assert metrics["mlm_count"].item() == 0
    assert metrics["mlm_loss"].item() == 0
    loss.backward()  # the NSP part still trains
    assert model.nsp.linear.weight.grad.abs().sum() > 0


def test_errors_name_what_is_wrong(model):
    batch = make_batch(seed=6)
    with pytest.raises(UsageError, match="mlm_labels"):
        pretraining_loss(model, Batch(batch.input_ids, batch.token_type_ids,
                                      batch.attention_mask))
    bad = make_batch(seed=6)
    bad.mlm_labels[2, 5] = VOCAB + 7
    with pytest.raises(InputError, match=r"1007 at \(batch 2, position 5\).*vocab_size=1000"):
        pretraining_loss(model, bad)
    negative = make_batch(seed=6)
    negative.mlm_labels[0, 0] = -7
    with pytest.raises(InputError, match=r"-7 at \(batch 0, position 0\)"):
        pretraining_loss(model, negative)
    short = make_batch(seed=6)
    short.mlm_labels = short.mlm_labels[:, :-1]
    with pytest.raises(InputError, match="mlm_labels has shape"):
        pretraining_loss(model, short)
    wrong_nsp = make_batch(seed=6)
    wrong_nsp.next_sentence_labels = wrong_nsp.next_sentence_labels[:2]
    with pytest.raises(InputError, match="next_sentence_labels has shape"):
        pretraining_loss(model, wrong_nsp)
    with pytest.raises(UsageError, match=r"lacks \.bert, \.mlm"):
        PreTrainingObjective(nn.Module())
    with pytest.raises(UsageError, match="pad_vocab_to_multiple_of"):
        PreTrainingObjective(model, pad_vocab_to_multiple_of=0)


# ---- the decoder: the model's MLM head, no padded copy of the table --------------------------


def padded_loss_before(model: BertForPreTraining, batch: Batch, multiple: int) -> torch.Tensor:
    """The loss as the objective computed it before: the (V, H) table and the bias padded per
    step to a multiple of ``multiple`` rows (bias with PAD_LOGIT), the head re-implemented."""
    labels = batch.mlm_labels.reshape(-1)
    positions = (labels != -100).nonzero().squeeze(1)
    out = model.bert(batch.input_ids, batch.attention_mask, batch.token_type_ids)
    hidden = out.last_hidden_state
    rows = hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions)
    head, table = model.mlm, model.bert.embeddings.word.weight
    extra = -table.shape[0] % multiple
    logits = F.linear(head.norm(head.act(head.dense(rows))), F.pad(table, (0, 0, 0, extra)),
                      F.pad(head.bias, (0, extra), value=PAD_LOGIT))
    mlm = F.cross_entropy(logits.float(), labels.index_select(0, positions))
    return mlm + F.cross_entropy(model.nsp(out.pooler_output).float(), batch.next_sentence_labels)


@pytest.mark.parametrize("seed", [0, 3])
def test_loss_equals_the_padded_computation_before(model, seed):
    batch = make_batch(seed=seed)
    loss, _ = pretraining_loss(model, batch)
    assert abs(loss.item() - padded_loss_before(model, batch, 64).item()) < 1e-6


def test_decoder_is_the_head_and_copies_no_table(model):
    from torch.utils._python_dispatch import TorchDispatchMode

    rows = torch.randn(5, 32)
    weight = model.bert.embeddings.word.weight
    table = weight.untyped_storage().data_ptr()

    class LargestOutput(TorchDispatchMode):
        """The largest tensor an op made, views of the table itself (its transpose) aside."""
        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for item in out if isinstance(out, (tuple, list)) else [out]:
                if (isinstance(item, torch.Tensor)
                        and item.untyped_storage().data_ptr() != table):
                    LargestOutput.largest = max(LargestOutput.largest, item.numel())
            return out

    logits = masked_lm_logits(model.mlm, rows, weight)
    assert logits.shape == (5, VOCAB)
    torch.testing.assert_close(logits, model.mlm(rows, weight), rtol=0, atol=0)
    batch = make_batch(seed=5, rate=0.05)  # M = 4 to 8 masked rows: (M, V) logits < (V, H)
    with LargestOutput():
        pretraining_loss(model, batch)
    assert LargestOutput.largest < weight.numel()  # nothing as big as the (V, H) table was made


def test_vocab_padding_is_deprecated_and_has_no_effect(model):
    batch = make_batch(seed=4)
    reference, _ = pretraining_loss(model, batch)
    with pytest.warns(DeprecationWarning, match="pad_vocab_to_multiple_of has no effect"):
        objective = PreTrainingObjective(model, pad_vocab_to_multiple_of=64)
    with pytest.warns(DeprecationWarning):
        loss, _ = objective(batch)
    assert loss.item() == reference.item()


# ---- exact aggregation ------------------------------------------------------------------------


def test_evaluation_aggregates_exactly_not_mean_of_means(model):
    # Two batches with very different numbers of masked positions.
    few = make_batch(seed=7, rate=0.0)   # only position 1 of each row
    many = make_batch(seed=8, rate=0.6)
    objective = PreTrainingObjective(model)
    result = evaluate(objective, [few, many])

    sums = {"mlm": 0.0, "nsp": 0.0}
    counts = {"mlm": 0, "nsp": 0}
    with torch.no_grad():
        for batch in (few, many):
            out = model(batch.input_ids, batch.attention_mask, batch.token_type_ids)
            sums["mlm"] += F.cross_entropy(out.prediction_logits.reshape(-1, VOCAB),
                                           batch.mlm_labels.reshape(-1), reduction="sum").item()
            counts["mlm"] += int((batch.mlm_labels != -100).sum())
            sums["nsp"] += F.cross_entropy(out.seq_relationship_logits,
                                           batch.next_sentence_labels, reduction="sum").item()
            counts["nsp"] += len(batch)
    exact = sums["mlm"] / counts["mlm"]
    assert result["mlm_loss"] == pytest.approx(exact, abs=1e-5)
    assert result["nsp_loss"] == pytest.approx(sums["nsp"] / counts["nsp"], abs=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(exact), rel=1e-5)
    assert result["batches"] == 2
    # The mean of the two per-batch means is a different number: the test can tell them apart.
    per_batch = [pretraining_loss(model, b)[1]["mlm_loss"].item() for b in (few, many)]
    assert abs(sum(per_batch) / 2 - exact) > 1e-3
    assert model.training  # evaluate() restored the mode


def test_summarize_accepts_batch_averaged_sums():
    # The trainer divides every metric by the number of batches; ratios are unchanged.
    summed = {"mlm_loss_sum": 12.0, "mlm_correct": 3.0, "mlm_count": 6.0}
    averaged = {k: torch.tensor(v / 4) for k, v in summed.items()}
    assert summarize(averaged) == pytest.approx(summarize(summed))
    assert summarize(summed)["mlm_loss"] == 2.0
    assert summarize(summed)["mlm_accuracy"] == 0.5
    assert "nsp_loss" not in summarize(summed)
    totals = PreTrainingMetrics()
    totals.update(summed)
    totals.update({"mlm_loss_sum": 0.0, "mlm_correct": 1.0, "mlm_count": 2.0})
    assert totals.compute()["mlm_loss"] == pytest.approx(12.0 / 8)


# ---- module structure, autocast, trainer ------------------------------------------------------


def test_objective_shares_the_model_and_its_state_dict_keys(model):
    objective = PreTrainingObjective(model)
    assert list(objective.state_dict()) == list(model.state_dict())
    assert objective.model is model
    assert objective.bert.embeddings.word.weight is model.bert.embeddings.word.weight
    # A training checkpoint of the objective loads straight into a fresh pretraining model.
    fresh = BertForPreTraining(tiny_config())
    fresh.load_state_dict(objective.state_dict())
    batch = make_batch(seed=9)
    assert pretraining_loss(fresh, batch)[0].item() == pytest.approx(
        objective(batch)[0].item(), abs=1e-6)


def test_bf16_autocast_keeps_float32_loss(model):
    batch = make_batch(seed=10)
    reference, _ = pretraining_loss(model, batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, metrics = pretraining_loss(model, batch)
    assert loss.dtype == torch.float32 and metrics["mlm_loss_sum"].dtype == torch.float32
    assert loss.item() == pytest.approx(reference.item(), rel=2e-2)
    loss.backward()
    assert model.bert.embeddings.word.weight.grad.dtype == torch.float32


def test_trainer_runs_the_objective(tmp_path):
    from bertkit.training import ResumableLoader, TrainConfig, Trainer

    torch.manual_seed(0)
    objective = PreTrainingObjective(BertForPreTraining(tiny_config(dropout=0.1)))
    batches = [make_batch(seed=s, batch=1) for s in range(16)]

    def collate(items: list[Batch]) -> Batch:
        return Batch(*(torch.cat([getattr(b, f) for b in items])
                       for f in ("input_ids", "token_type_ids", "attention_mask", "mlm_labels",
                                 "next_sentence_labels")))

    loader = ResumableLoader(batches, batch_size=4, collate_fn=collate, seed=0)
    config = TrainConfig(output_dir=tmp_path, max_steps=6, learning_rate=1e-3, log_every=2,
                         eval_every=3, progress=False)
    trainer = Trainer(objective, pretraining_loss_fn, loader, config,
                      eval_data=[collate(batches[:4]), collate(batches[4:6])])
    result = trainer.fit()
    assert result.step == 6
    exact = summarize(result.eval_metrics)
    direct = evaluate(objective, [collate(batches[:4]), collate(batches[4:6])])
    assert exact["mlm_loss"] == pytest.approx(direct["mlm_loss"], rel=1e-5)
    # The checkpoint holds the pretraining model's own parameter names.
    from bertkit.training import load_model_weights

    fresh = BertForPreTraining(tiny_config())
    load_model_weights(result.checkpoint, fresh)
    torch.testing.assert_close(fresh.mlm.bias, objective.mlm.bias)


def test_content_accuracy_counts_only_content_targets() -> None:
    torch.manual_seed(0)
    model = BertForPreTraining(tiny_config())
    batch = make_batch(seed=3)
    content = torch.zeros(VOCAB, dtype=torch.bool)
    content[VOCAB // 2:] = True  # the upper half of the vocabulary is "content"
    objective = PreTrainingObjective(model, content_tokens=content)
    assert "content_tokens" not in objective.state_dict(), "the table is not saved"
    _, metrics = objective(batch)
    # Oracle: the dense model's argmax at every labelled position, split by the table.
    with torch.no_grad():
        logits = model(batch.input_ids, batch.attention_mask,
                       batch.token_type_ids).prediction_logits
    labelled = batch.mlm_labels != -100
    targets = batch.mlm_labels[labelled]
    hits = logits[labelled].argmax(-1) == targets
    is_content = content[targets]
    assert 0 < is_content.sum() < targets.numel()
    assert metrics["mlm_content_count"].item() == is_content.sum().item()
    assert metrics["mlm_content_correct"].item() == (hits & is_content).sum().item()
    exact = summarize(metrics)
    assert exact["content_accuracy"] == pytest.approx(
        (hits & is_content).sum().item() / is_content.sum().item())
    # Without a table there is no content figure.
    assert "content_accuracy" not in summarize(PreTrainingObjective(model)(batch)[1])
