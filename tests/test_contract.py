"""Tier 2: the contract (gradtx.testing.contract) for every registry entry, under strict dtype promotion
(no block may rely on an implicit bfloat16 -> float32 promotion)."""

from __future__ import annotations

import jax
import pytest
from registry import ENTRIES

from gradtx.testing.contract import check_transformation


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_contract(entry):
    with jax.numpy_dtype_promotion("strict"):
        check_transformation(entry.make(), check_empty=not entry.uses_mask, extra_args=entry.extra_args)
