"""Learning-rate schedule values at known steps, and which parameters escape weight decay."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bertkit.errors import ConfigError
from bertkit.training import build_optimizer, build_scheduler, lr_factor, param_groups


def factor(step, schedule="linear", min_ratio=0.0):
    return lr_factor(step, schedule=schedule, warmup_steps=10, total_steps=110,
                     min_ratio=min_ratio)


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 0.1), (4, 0.5), (9, 1.0), (10, 1.0), (60, 0.5), (85, 0.25), (109, 0.01), (500, 0.0)],
)
def test_linear_warmup_then_linear_decay(step, expected):
    assert factor(step) == pytest.approx(expected)


def test_cosine_and_constant_and_floor():
    assert factor(9, "cosine") == pytest.approx(1.0)
    assert factor(35, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert factor(60, "cosine") == pytest.approx(0.5)
    assert factor(110, "cosine") == pytest.approx(0.0)
    assert factor(4, "constant") == pytest.approx(0.5)
    assert factor(100, "constant") == 1.0
    assert factor(60, min_ratio=0.1) == pytest.approx(0.55)  # halfway between 1 and 0.1
    assert factor(1000, "cosine", min_ratio=0.1) == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="schedule"):
        factor(0, "exponential")


def test_scheduler_drives_the_optimizer_and_round_trips():
    param = nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW([param], lr=2.0)
    scheduler = build_scheduler(optimizer, schedule="linear", warmup_steps=4, total_steps=8)
    seen = []
    for _ in range(8):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([2 * factor for factor in
                                  (0.25, 0.5, 0.75, 1.0, 1.0, 0.75, 0.5, 0.25)])
    state = scheduler.state_dict()
    other = build_scheduler(torch.optim.AdamW([param], lr=2.0), schedule="linear",
                            warmup_steps=4, total_steps=8)
    other.load_state_dict(state)
    assert other.get_last_lr() == scheduler.get_last_lr() == [0.0]


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.up = nn.Linear(4, 6)
        self.norm = nn.LayerNorm(6)
        self.rel_bias = nn.Parameter(torch.ones(3, 3))  # 2-D, but a bias: no decay
        self.frozen = nn.Parameter(torch.ones(2, 2), requires_grad=False)
        self.decoder = nn.Linear(4, 10, bias=False)
        self.decoder.weight = self.embed.weight  # tied: optimised once


def test_no_decay_groups():
    decay, no_decay = param_groups(Tiny(), 0.01)
    assert sorted(decay["names"]) == ["embed.weight", "up.weight"]
    assert sorted(no_decay["names"]) == ["norm.bias", "norm.weight", "rel_bias", "up.bias"]
    assert len(decay["params"]) == 2 and len(no_decay["params"]) == 4
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.01, 0.0)


def test_decay_only_shrinks_decayed_parameters():
    """With zero gradients AdamW's update is the decoupled decay alone: w ← w (1 − lr·wd)."""
    model = Tiny()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = build_optimizer(model, learning_rate=0.1, weight_decay=0.5)
    for param in model.parameters():
        param.grad = torch.zeros_like(param)
    optimizer.step()
    after = dict(model.named_parameters())
    for name in ("embed.weight", "up.weight"):
        assert torch.allclose(after[name], before[name] * 0.95)
    for name in ("up.bias", "norm.weight", "norm.bias", "rel_bias", "frozen"):
        assert torch.equal(after[name], before[name]), name
