"""A linear probe: multinomial logistic regression on frozen features, in torch.

Why torch and not scikit-learn's ``LogisticRegression``: bertkit already depends on torch and
not on scikit-learn (an extra would be needed for every probe run); the probe trains with
mini-batches, so a float16 memmap of 10^5..10^6 rows is read once per epoch in float32 chunks
instead of copied whole into a float64 design matrix (what lbfgs in scikit-learn wants); and
the same code runs on a GPU when the extraction did. The test suite cross-checks it against
scikit-learn on the same data (scikit-learn is a test dependency).

Features are standardised with the training rows' mean and standard deviation (a linear probe
is then insensitive to the per-dimension scale outliers BERT's hidden states have). Training
is AdamW with a linear decay to zero over a fixed number of epochs, with weight decay as the
L2 penalty; no early stopping on the held-out split, so its accuracy stays an honest estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from bertkit.errors import UsageError

CHUNK_ROWS = 65_536


@dataclass(frozen=True)
class ProbeSettings:
    """How a probe trains; the defaults fit 10^3..10^5 rows of 10^2..10^3 features."""

    epochs: int = 8
    batch_size: int = 256
    learning_rate: float = 5e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str | None = None   # None: the CPU, or the extracting model's device in a run

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"probe {name}={value!r}; expected a positive int")
        if not self.learning_rate > 0 or self.weight_decay < 0:
            raise UsageError(f"probe learning_rate={self.learning_rate} must be > 0 and "
                             f"weight_decay={self.weight_decay} >= 0")


def _rows(x: np.ndarray, index: np.ndarray | slice, device: str) -> Tensor:
    """Rows of a (possibly float16, possibly memmapped) array as float32 on ``device``."""
    return torch.from_numpy(np.asarray(x[index], dtype=np.float32)).to(device)


class LinearProbe:
    """``W x + b`` over standardised features, trained with cross-entropy.

    >>> probe = LinearProbe(num_classes=3).fit(train_x, train_y)
    >>> probe.accuracy(test_x, test_y)
    """

    def __init__(self, num_classes: int, settings: ProbeSettings | None = None):
        if not isinstance(num_classes, int) or num_classes < 2:
            raise UsageError(f"a probe needs at least 2 classes, got {num_classes!r}")
        self.num_classes = num_classes
        self.settings = settings or ProbeSettings()
        self.linear: torch.nn.Linear | None = None
        self.mean: Tensor | None = None
        self.scale: Tensor | None = None
        self.device = self.settings.device or "cpu"

    def _standardise(self, x: Tensor) -> Tensor:
        assert self.mean is not None and self.scale is not None
        return (x - self.mean) / self.scale

    def fit(self, x: np.ndarray, y: np.ndarray) -> LinearProbe:
        """Train on (N, H) features ``x`` and (N,) integer labels ``y`` in 0..num_classes-1."""
        y = np.asarray(y, dtype=np.int64)
        if x.ndim != 2 or len(x) != len(y) or not len(y):
            raise UsageError(f"probe data: expected (N, H) features and N labels, got "
                             f"{tuple(x.shape)} and {len(y)}")
        if y.min() < 0 or y.max() >= self.num_classes:
            raise UsageError(f"probe labels must lie in 0..{self.num_classes - 1}")
        s = self.settings
        device = self.device
        total = np.zeros(x.shape[1])
        squares = np.zeros(x.shape[1])
        for start in range(0, len(x), CHUNK_ROWS):
            chunk = np.asarray(x[start:start + CHUNK_ROWS], dtype=np.float64)
            total += chunk.sum(0)
            squares += (chunk ** 2).sum(0)
        mean = total / len(x)
        std = np.sqrt(np.maximum(squares / len(x) - mean ** 2, 0.0))
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device)
        self.scale = torch.tensor(np.where(std > 1e-6, std, 1.0), dtype=torch.float32,
                                  device=device)
        generator = torch.Generator().manual_seed(s.seed)
        self.linear = torch.nn.Linear(x.shape[1], self.num_classes).to(device)
        with torch.no_grad():
            self.linear.weight.normal_(0.0, 0.01, generator=generator)
            self.linear.bias.zero_()
        optimiser = torch.optim.AdamW(self.linear.parameters(), lr=s.learning_rate,
                                      weight_decay=s.weight_decay)
        steps = s.epochs * -(-len(y) // s.batch_size)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: 1.0 - k / steps)
        labels = torch.from_numpy(y).to(device)
        for _ in range(s.epochs):
            order = torch.randperm(len(y), generator=generator).numpy()
            for start in range(0, len(y), s.batch_size):
                index = np.sort(order[start:start + s.batch_size])  # sorted: memmap-friendly
                logits = self.linear(self._standardise(_rows(x, index, device)))
                loss = F.cross_entropy(logits, labels[torch.from_numpy(index).to(device)])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
        return self

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N,) predicted class ids for (N, H) features."""
        if self.linear is None:
            raise UsageError("the probe is not trained yet: call fit() first")
        out = [self.linear(self._standardise(_rows(x, slice(start, start + CHUNK_ROWS),
                                                   self.device))).argmax(-1).cpu()
               for start in range(0, len(x), CHUNK_ROWS)]
        return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Share of rows whose predicted class is ``y``."""
        y = np.asarray(y)
        if not len(y):
            raise UsageError("accuracy of an empty held-out set is undefined")
        return float((self.predict(x) == y).mean())
