"""gradtx.contrib against optax.contrib: every Optax name is here, with Optax's signature and state fields.

Signatures: Optax's parameters first, in Optax's order, with Optax's kinds and defaults; gradtx may add
keyword-only options with defaults after them. States: the same NamedTuple field names. Behaviour is checked
elsewhere (the registry tiers cross-check each optimizer with Optax on the same gradient stream, and
tests/test_contrib_*.py hold the closed forms and Optax's bugs that gradtx fixes).
"""

from __future__ import annotations

import inspect

import optax.contrib as oc
import pytest

import gradtx.contrib as gc

OPTAX_NAMES = sorted(n for n in dir(oc) if not n.startswith("_"))
# Names of optax.contrib not yet in gradtx.contrib: issue 7's remaining work (this set must shrink to empty;
# the test fails when a name lands without being removed here, or when one goes missing).
NOT_YET: set[str] = set()
# Defaults that differ on purpose: {(name, parameter): why}.
OTHER_DEFAULTS = {
    ("sophia", "hessian_diagonal_fn"): "None builds hutchinson_estimator_diag_hessian() per call; Optax's default "
    "is one transformation object built at import and shared by every sophia()",
    ("adopt", "clip_value_fn"): "a named function of the same t ** 0.25 (Optax: a lambda); a static field compares "
    "by identity, so one module-level function keeps adopt() equal to adopt()",
    ("scale_by_adopt", "clip_value_fn"): "as for adopt",
}


def test_every_optax_contrib_name_exists_or_is_listed_as_not_yet():
    missing = {n for n in OPTAX_NAMES if not hasattr(gc, n)}
    assert missing == NOT_YET


def _shape(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


PRESENT = [n for n in OPTAX_NAMES if hasattr(gc, n)]


@pytest.mark.parametrize("name", PRESENT)
def test_signature_or_fields_are_optax(name):
    ours, theirs = getattr(gc, name), getattr(oc, name)
    if isinstance(theirs, type) and issubclass(theirs, tuple) and hasattr(theirs, "_fields"):
        assert tuple(ours._fields) == tuple(theirs._fields)
        return
    if not callable(theirs):
        assert ours == theirs
        return
    o, t = _shape(ours), _shape(theirs)
    t = [(p, k, o[i][2] if (name, p) in OTHER_DEFAULTS and i < len(o) else d) for i, (p, k, d) in enumerate(t)]
    assert o[: len(t)] == t, "Optax's parameters, in Optax's order, with Optax's defaults"
    extra = o[len(t) :]
    assert all(k is inspect.Parameter.KEYWORD_ONLY and d is not inspect.Parameter.empty for _, k, d in extra), extra
