"""The fast form as the default for inference: a twin of the core encoder, built on demand.

Why a twin and not the explicit :func:`~bertkit.inference.fastpath.to_fast_form`: that one
changes the model in place for good (prepacked layers compute no gradients), so it cannot be
the default of a model that may still be trained. Here the core encoder stays untouched and a
second, fast-form module tree is built beside it the first time the model runs a CPU
inference call. The twin shares every parameter object with the core (no copy); only the
prepacked weights are new (oneDNN's blocked layout of the linear weights, as many bytes as
those weights). Training mode, autograd, ``torch.compile`` and export keep running the core.

The twin is a cache, and is rebuilt when what it was built from changes (:class:`Snapshot`):
``load_state_dict`` and optimizer steps bump version counters, ``.to()`` / ``.half()``
change storages, assigning new ``nn.Parameter`` objects or submodules changes identities.
(Writes through ``param.data`` bypass version counters, as they bypass autograd; call
:meth:`FastTwin.invalidate` after such edits.)
"""

from __future__ import annotations

import copy
import threading
from itertools import chain

import torch
from torch import nn

from bertkit.inference.fastpath.form import to_fast_form
from bertkit.inference.fastpath.layers import FastBert
from bertkit.model.bert import Bert, EncoderLayer


def can_twin(core: nn.Module) -> bool:
    """Whether the fast form computes exactly what ``core`` does: the plain BERT encoder
    (subclasses and other encoders may change the function), on CPU."""
    return (type(core) is Bert
            and all(type(layer) is EncoderLayer for layer in core.layers)
            and core.embeddings.word.weight.device.type == "cpu")


class Snapshot:
    """What a twin was built from: each module's children, parameters and buffers as
    registered (which object under which name), and each tensor's storage and version counter.

    :meth:`holds` re-reads them on every call (~30 µs for MiniLM's 70 modules and 79 tensors
    on a busy core, against ~20 ms for a 1×128 call): flat recorded lists of ``dict[name] is
    object`` checks, not a ``core.modules()`` walk (which alone takes ~100 µs).
    """

    def __init__(self, core: nn.Module):
        self.core = core
        self.modules = list(core.modules())
        self.children = [(m._modules, name, child) for m in self.modules
                         for name, child in m._modules.items()]
        self.tensors = [(table, name, t, t.data_ptr(), t._version) for m in self.modules
                        for table in (m._parameters, m._buffers)
                        for name, t in table.items() if t is not None]

    def holds(self, core: nn.Module) -> bool:
        return (core is self.core
                and all(table.get(name) is child for table, name, child in self.children)
                and all(table.get(name) is t and t._version == version and t.data_ptr() == pointer
                        for table, name, t, pointer, version in self.tensors))

    def has_hooks(self) -> bool:
        """Whether a module has forward hooks (the twin's modules would not run them)."""
        return any(m._forward_hooks or m._forward_pre_hooks for m in self.modules)


def inference_call() -> bool:
    """True inside ``torch.inference_mode()`` / ``no_grad`` and outside compilation, export
    and tracing (those need the core's plain operators)."""
    return not (torch.is_grad_enabled() or torch.compiler.is_compiling()
                or torch.compiler.is_exporting() or torch.jit.is_tracing())


class FastTwin:
    """The fast-form twin of one core encoder, built lazily and rebuilt when stale.

    Not an ``nn.Module``, so a model holding one registers nothing: its parameters, state dict
    and ``.to()`` see only the core. Copies and pickles of the holder start empty.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._twin: FastBert | None = None
        self._built_from: Snapshot | None = None

    def encoder(self, core: Bert) -> nn.Module:
        """The module to run for this call: the fast twin when it computes the same function
        (:func:`can_twin`, no hooks), else ``core`` itself."""
        if not can_twin(core):
            return core
        with self._lock:
            if self._built_from is None or not self._built_from.holds(core):
                self._twin, self._built_from = None, Snapshot(core)  # free the stale twin
            if self._built_from.has_hooks():
                return core
            if self._twin is None:
                self._twin = build_twin(core)
            return self._twin

    def invalidate(self) -> None:
        """Drop the twin; the next inference call builds it afresh."""
        with self._lock:
            self._twin, self._built_from = None, None

    def __deepcopy__(self, memo: dict[int, object]) -> FastTwin:
        return FastTwin()

    def __getstate__(self) -> dict[str, object]:
        return {}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__()


def build_twin(core: Bert) -> FastBert:
    """A fast-form module tree over ``core``'s own parameter and buffer objects."""
    shared = {id(t): t for t in chain(core.parameters(), core.buffers())}
    twin = copy.deepcopy(core, memo=shared)  # new modules, the same tensors
    return to_fast_form(twin.eval())
