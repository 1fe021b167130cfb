"""Checkpoint provenance manifests, as the audit command sees them.

The core lives in :mod:`bertkit.checkpoints.provenance`, a layer below the runners that save
checkpoints, so that fine-tuning and pretraining can write the manifest beside every checkpoint
they save; this module re-exports it under the security package, where ``bertkit audit
manifest|verify`` and ``--verify-manifest`` look for it.
"""

from bertkit.checkpoints.provenance import (
    FORMAT,
    MANIFEST,
    TOKENIZER_FILES,
    Mismatch,
    VerifyReport,
    build_manifest,
    data_fingerprint,
    load_verified,
    read_manifest,
    sha256_file,
    tensor_hashes,
    verify_manifest,
    write_manifest,
)

__all__ = ["FORMAT", "MANIFEST", "TOKENIZER_FILES", "Mismatch", "VerifyReport", "build_manifest",
           "data_fingerprint", "load_verified", "read_manifest", "sha256_file", "tensor_hashes",
           "verify_manifest", "write_manifest"]
