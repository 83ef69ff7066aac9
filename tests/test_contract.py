"""Tier 2: the contract (gradtx.testing.contract) for every registry entry."""

from __future__ import annotations

import pytest
from registry import ENTRIES

from gradtx.testing.contract import check_transformation


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_contract(entry):
    check_transformation(entry.make(), check_empty=not entry.uses_mask)
