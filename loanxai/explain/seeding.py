"""Repeatable explanations: each one's samplers are seeded from what it explains.

alibi's AnchorTabular and DiCE draw from numpy's global generator (alibi also from
``random``), seeded once at fit: two explanations of one application would differ. Each
explanation here seeds both generators first, from a digest of the encoded application, the
model (its sha256) and the request's ``seed``: the same three give the same answer, on any
worker. The generators are the process's: one explanation at a time per process.
"""
from __future__ import annotations

import hashlib
import random

import numpy as np

__all__ = ["sample_seed", "seed_generators"]


def sample_seed(x: np.ndarray, model_sha256: str, seed: int) -> int:
    """The samplers' seed for one explanation of the encoded application ``x``, shape (n_features,)."""
    digest = hashlib.sha256(np.ascontiguousarray(x, dtype=np.float64).tobytes() + model_sha256.encode()
                            + seed.to_bytes(8, "big"))
    return int.from_bytes(digest.digest()[:4], "big")


def seed_generators(seed: int) -> None:
    """Seed numpy's and Python's global generators (what alibi and DiCE draw from)."""
    np.random.seed(seed)
    random.seed(seed)
