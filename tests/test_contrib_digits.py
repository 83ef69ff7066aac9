"""gradtx.contrib's optimizers train the digits MLP: the recipes of benchmarks/contrib_digits.py (the README's
table), each asserted to lower the training loss at least tenfold and to reach more than 95 % test accuracy in
100 full-batch steps. The task and the claim are those of tests/test_integrations.py for the named optimizers:
easy, with rates tuned once, so a failure means an optimizer stopped working, not that it ranks low.

Coverage: every optimizer recipe of gradtx.contrib is in the table or in ``ELSEWHERE`` with the test that trains
it (``test_every_contrib_optimizer_is_covered``).
"""

from __future__ import annotations

import pytest

import gradtx.contrib

pytest.importorskip("sklearn")

from digits_bench import bench

# Optimizers trained elsewhere, and the contrib names that are not optimizers.
ELSEWHERE = {
    "dpsgd": "per-example gradients: tests/test_contrib_misc.py::test_dpsgd_matches_optax_for_200_steps_and_converges",
    "split_real_and_imaginary": "complex parameters: tests/test_contrib_misc.py, complex least squares",
    "schedule_free": "the wrapper behind schedule_free_adamw and schedule_free_sgd (both in the table)",
}
NOT_OPTIMIZERS = {"normalize", "differentially_private_aggregate", "hutchinson_estimator_diag_hessian",
                  "orthogonalize_via_newton_schulz", "schedule_free_eval_params", "ademamix_b3_schedule"}


@pytest.fixture(scope="module")
def data():
    return bench.digits()


def test_every_contrib_optimizer_is_covered():
    recipes = {name.split("(")[0] for name in bench.RECIPES}
    recipes |= {"cautious", "reduce_on_plateau", "sam", "mechanize"}  # wrappers, named inside their recipe
    optimizers = {n for n in gradtx.contrib.__all__
                  if n[0].islower() and not n.startswith("scale_by_") and n not in NOT_OPTIMIZERS}
    missing = optimizers - recipes - set(ELSEWHERE)
    assert not missing, f"contrib optimizers trained nowhere: {sorted(missing)}"
    assert all(any(name.startswith(w) or f"{w}(" in name for name in bench.RECIPES)
               for w in ("cautious", "reduce_on_plateau", "sam", "mechanize"))


@pytest.mark.parametrize("name", list(bench.RECIPES))
def test_contrib_optimizer_trains_digits(name, data):
    make, extra = bench.RECIPES[name]
    history, accuracy = bench.train(make(), extra, data)
    assert history.shape == (bench.STEPS + 1,)
    assert history[-1] < 0.1 * history[0], f"{name}: the loss fell from {history[0]} to {history[-1]} only"
    assert accuracy > 0.95, f"{name}: test accuracy {accuracy:.4f}"
