"""The one table of model shapes every lowbit benchmark, self-check and test uses
(docs/SPEC.md §4 for dense layers, §5.11 for MoE layers).

Dense layers are weights ``(K, N)`` per linear layer at tensor-parallel 1; MoE
layers are ``MoeShape`` records (experts, top-k, hidden H, per-expert
intermediate I). Model names are the spelling the ``lowbit`` command shows;
``canonical_model`` maps any user spelling (``llama3-70b``, ``LLAMA-3-70B``)
onto it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# SPEC §4: weight [K, N] of each linear layer (qkv, o, gate||up, down), TP = 1.
DENSE: dict[str, list[tuple[int, int]]] = {
    "Llama-3-8B": [(4096, 6144), (4096, 4096), (4096, 28672), (14336, 4096)],
    "Llama-3-70B": [(8192, 10240), (8192, 8192), (8192, 57344), (28672, 8192)],
    "Llama-3.1-405B": [(16384, 18432), (16384, 16384), (16384, 106496), (53248, 16384)],
    "Qwen2.5-72B": [(8192, 10240), (8192, 8192), (8192, 59136), (29568, 8192)],
}


class MoeShape(NamedTuple):
    experts: int
    topk: int
    hidden: int        # H: GEMM1 K, GEMM2 N
    intermediate: int  # I: GEMM1 N = 2I (gate || up), GEMM2 K

    @property
    def gemm1(self) -> tuple[int, int]:
        """(N, K) of the gate/up GEMM."""
        return 2 * self.intermediate, self.hidden

    @property
    def gemm2(self) -> tuple[int, int]:
        """(N, K) of the down GEMM."""
        return self.hidden, self.intermediate


# SPEC-MOE §5.11 (docs/SPEC.md): routed experts only.
MOE: dict[str, MoeShape] = {
    "DeepSeek-R1": MoeShape(256, 8, 7168, 2048),
    "Qwen3-30B-A3B": MoeShape(128, 8, 2048, 768),
    "Qwen3-235B-A22B": MoeShape(128, 8, 4096, 1536),
    "Llama-4-Scout": MoeShape(16, 1, 5120, 8192),
    "gpt-oss-120b": MoeShape(128, 4, 2880, 2880),
}

# Every model name, dense first (the order tables and plots use).
MODELS: tuple[str, ...] = tuple(DENSE) + tuple(m for m in MOE if m not in DENSE)

# Token counts of the dense GEMM grid (SPEC §4) and of the MoE grid (§5.11).
TOKENS = (1, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
MOE_TOKENS = (1, 4, 16, 64, 256, 1024, 4096, 8192)

_ALIASES = {"llama3405b": "Llama-3.1-405B", "deepseekr1moe": "DeepSeek-R1",
            "deepseek": "DeepSeek-R1", "llama4scout17b16e": "Llama-4-Scout",
            "gptoss": "gpt-oss-120b"}


def _key(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(s).lower())


def canonical_model(name: str) -> str | None:
    """'llama3-8b', 'LLAMA-3-8B', 'llama-3.1-405b' -> the table's spelling; None if unknown."""
    table = {_key(m): m for m in MODELS} | _ALIASES
    return table.get(_key(name))


def dense_layers(models=None) -> list[tuple[str, int, int]]:
    """(model, K, N) of every dense layer of `models` (any spelling; default all),
    each (K, N) once even where two models share it."""
    names = [canonical_model(m) or m for m in (models or DENSE)]
    out, seen = [], set()
    for m in names:
        for k, n in DENSE.get(m, ()):
            if (k, n) not in seen:
                seen.add((k, n))
                out.append((m, k, n))
    return out
