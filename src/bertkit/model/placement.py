"""Where a model runs and in what precision: device and dtype names as users write them.

Training, fine-tuning, inference and ``from_pretrained`` accept the same device names
(``auto``, ``cpu``, ``cuda``, ``cuda:N``) and the same dtype names (``float32``, ``bfloat16``,
``float16``, the ``torch`` dtypes, and ``auto`` = what the checkpoint says), so they share one
resolver and one set of error messages.

Precision is also a speed question on CPU, and the answer depends on the CPU: bfloat16 is ~2×
float32 where oneDNN has native bf16 instructions (AVX512-BF16, AMX) and several times *slower*
where it must emulate them (measured 0.1× on an AVX2-only EPYC, ``benchmarks/embed.py``);
float16 has no fast CPU kernels at all. :func:`cpu_precision_problem` says so in words.
"""

from __future__ import annotations

import torch

from bertkit.errors import UsageError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""The dtypes a model can be loaded in, by the names ``config.json`` and users write."""


def resolve_device(device: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` (or ``None``) → this process's GPU if CUDA is present, else the CPU; a bare
    ``"cuda"`` means GPU number ``local_rank`` so each process on a node gets its own. A device
    CUDA cannot serve raises :class:`UsageError` here, not at the first tensor moved."""
    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        device = f"cuda:{local_rank}"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise UsageError(f"unknown device {device!r}; expected auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"device {device!r} asked for, but this PyTorch has no usable CUDA; use 'cpu'"
        )
    return resolved


def resolve_dtype(dtype: str | torch.dtype, *, allowed: tuple[str, ...] = tuple(DTYPES)
                  ) -> torch.dtype:
    """A dtype name (``"bfloat16"``) or ``torch`` dtype → the ``torch`` dtype; anything
    else, or a dtype outside ``allowed``, raises a :class:`UsageError` naming the choices."""
    names = {value: name for name, value in DTYPES.items()}
    name = names.get(dtype) if isinstance(dtype, torch.dtype) else dtype
    if name not in allowed:
        raise UsageError(f"dtype={dtype!r}; expected one of {list(allowed)} (or the torch "
                         "dtypes of those names)")
    return DTYPES[name]


def checkpoint_dtype(declared: object, weights: dict[str, torch.Tensor]) -> torch.dtype:
    """What ``dtype="auto"`` means for a checkpoint: its ``config.json``'s ``dtype`` (or the
    older ``torch_dtype``) when that names a known dtype, else the dtype of its first floating
    tensor, else float32 (as ``transformers`` decides)."""
    if isinstance(declared, str) and declared in DTYPES:
        return DTYPES[declared]
    floats = (t.dtype for t in weights.values() if t.is_floating_point())
    found = next(floats, torch.float32)
    return found if found in DTYPES.values() else torch.float32


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively here (AVX512-BF16 / AMX); without it bf16 is
    emulated and slower than fp32 (measured 0.1× on an AVX2-only EPYC, benchmarks/embed.py)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_precision_problem(dtype: torch.dtype) -> str | None:
    """Why ``dtype`` would run slowly on this CPU, in words, or ``None`` when it runs well."""
    if dtype == torch.bfloat16 and not cpu_has_native_bf16():
        return (f"this CPU has no native bfloat16 instructions (capability "
                f"{torch.backends.cpu.get_cpu_capability()}; bf16 needs avx512_bf16 or "
                "amx_bf16): bfloat16 would run emulated, several times slower than float32 "
                "(0.1x measured on an AVX2 CPU); use float32, or quantize='int8' for speed")
    if dtype == torch.float16:
        return ("float16 has no fast CPU kernels (it runs several times slower than float32 "
                "here); use float32 or bfloat16 on CPU, float16 on a GPU")
    return None


def load_dtype(dtype: str | torch.dtype | None, torch_dtype: str | torch.dtype | None,
               declared: object, weights: dict[str, torch.Tensor],
               device: torch.device) -> torch.dtype:
    """The dtype ``from_pretrained(dtype=..., torch_dtype=...)`` loads in.

    ``torch_dtype`` is the older ``transformers`` spelling of ``dtype``; giving both with
    different values is refused. ``None`` means float32 (the ``transformers`` default);
    ``"auto"`` the checkpoint's own dtype (:func:`checkpoint_dtype`), except that on a CPU
    where that dtype would run slowly (:func:`cpu_precision_problem`) it means float32. An
    explicit dtype that would run slowly on this CPU is refused with the reason, rather than
    run several times slower without a word (cast with ``model.to(dtype)`` to do it anyway).
    """
    if dtype is not None and torch_dtype is not None and _canonical(dtype) != _canonical(
            torch_dtype):
        raise UsageError(f"dtype={dtype!r} and torch_dtype={torch_dtype!r} disagree; "
                         "torch_dtype is the older name of dtype: pass one")
    wanted = dtype if dtype is not None else torch_dtype
    if wanted is None:
        return torch.float32
    if wanted == "auto":
        found = checkpoint_dtype(declared, weights)
        slow = device.type == "cpu" and cpu_precision_problem(found) is not None
        return torch.float32 if slow else found
    resolved = resolve_dtype(wanted)
    problem = cpu_precision_problem(resolved) if device.type == "cpu" else None
    if problem is not None:
        raise UsageError(f"dtype={wanted!r}: {problem}; to cast anyway, load in float32 and "
                         f"call model.to({resolved})")
    return resolved


def _canonical(dtype: str | torch.dtype) -> str | torch.dtype:
    return dtype if dtype == "auto" else resolve_dtype(dtype)
