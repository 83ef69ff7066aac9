"""Optax 0.2.8's public surface (optimizers, transformations, combinators, wrappers, schedules, utilities,
tree utilities, types) exists in gradtx under the same names, with the same parameter names and defaults."""

from __future__ import annotations

import inspect

import optax
import pytest

import gradtx

OPTIMIZERS = """adabelief adadelta adafactor adagrad adam adamax adamaxw adamw adan amsgrad fromage lamb lars
lbfgs lion nadam nadamw noisy_sgd novograd optimistic_adam optimistic_adam_v2 optimistic_gradient_descent
polyak_sgd radam rmsprop rprop sgd sign_sgd signum sm3 yogi""".split()
TRANSFORMATIONS = """adaptive_grad_clip add_decayed_weights add_noise apply_every centralize clip
clip_by_block_rms clip_by_global_norm ema identity keep_params_nonnegative normalize_by_update_norm
per_example_global_norm_clip per_example_layer_norm_clip scale scale_by_adadelta scale_by_adam scale_by_adamax
scale_by_adan scale_by_amsgrad scale_by_backtracking_linesearch scale_by_belief
scale_by_distance_over_gradients scale_by_factored_rms scale_by_lbfgs scale_by_learning_rate scale_by_lion
scale_by_novograd scale_by_optimistic_gradient scale_by_param_block_norm scale_by_param_block_rms
scale_by_polyak scale_by_radam scale_by_rms scale_by_rprop scale_by_rss scale_by_schedule scale_by_sign
scale_by_sm3 scale_by_stddev scale_by_trust_ratio scale_by_yogi scale_by_zoom_linesearch set_to_zero
stateless stateless_with_tree_map trace zero_nans unitwise_clip unitwise_norm""".split()
COMBINATORS = """chain named_chain partition multi_transform masked freeze selective_transform
MultiSteps skip_not_finite skip_large_updates apply_if_finite conditionally_transform
conditionally_mask flatten lookahead LookaheadParams inject_hyperparams inject_stateful_hyperparams
with_extra_args_support monitor snapshot measure_with_ema value_and_grad_from_state microbatch""".split()
SCHEDULES = """constant_schedule cosine_decay_schedule cosine_onecycle_schedule exponential_decay join_schedules
linear_onecycle_schedule linear_schedule piecewise_constant_schedule piecewise_interpolate_schedule
polynomial_schedule sgdr_schedule warmup_constant_schedule warmup_cosine_decay_schedule
warmup_exponential_decay_schedule""".split()
UTILITIES = """apply_updates incremental_update periodic_update global_norm safe_norm safe_root_mean_squares
safe_increment safe_int32_increment power_iteration matrix_inverse_pth_root nnls scale_gradient
tree_map_params update_moment update_moment_per_elem_norm update_infinity_moment""".split()
TREE = """add add_scale allclose batch_shape bias_correction cast cast_like clip conj div dtype full_like get
get_all_with_path map_params max min mul norm ones_like random_like real scale set size split_key_like sub
sum unwrap_random_key_data update_infinity_moment update_moment update_moment_per_elem_norm vdot where
zeros_like""".split()
TYPES = """GradientTransformation GradientTransformationExtraArgs EmptyState init_empty_state Schedule
ScalarOrSchedule Params Updates OptState MaskedNode""".split()

ALL = OPTIMIZERS + TRANSFORMATIONS + COMBINATORS + SCHEDULES + UTILITIES + TYPES


@pytest.mark.parametrize("name", ALL)
def test_name_exists(name):
    assert hasattr(gradtx, name), f"gradtx.{name} is missing"


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedule_reachable_in_schedules_module(name):
    assert getattr(gradtx.schedules, name) is getattr(gradtx, name)


@pytest.mark.parametrize("name", TREE)
def test_tree_name_exists(name):
    assert hasattr(gradtx.tree, name), f"gradtx.tree.{name} is missing"


def _params(fn):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return [(p.name, p.default if p.default is not inspect.Parameter.empty else "<required>", p.kind.name)
            for p in sig.parameters.values() if p.name not in ("self",)]


SIGNATURE_EXCEPTIONS = {
    # name: why its signature differs from Optax's (each also listed in the README's "Coming from Optax")
    "scale_by_learning_rate": "learning_rate is required: Optax's default None fails as soon as it is used",
}


@pytest.mark.parametrize("name", [n for n in OPTIMIZERS + TRANSFORMATIONS + SCHEDULES if hasattr(optax, n)])
def test_same_parameters_and_defaults_as_optax(name):
    if name in SIGNATURE_EXCEPTIONS:
        pytest.skip(SIGNATURE_EXCEPTIONS[name])
    ours, theirs = _params(getattr(gradtx, name)), _params(getattr(optax, name))
    if theirs is None:
        pytest.skip(f"optax.{name} has no inspectable signature")
    names_ours = [(n, k) for n, _, k in ours]
    names_theirs = [(n, k) for n, _, k in theirs]
    # gradtx may add options after Optax's, keyword-only and defaulted (e.g. rmsprop's init_from_first).
    assert names_ours[: len(names_theirs)] == names_theirs, f"{name}: {names_ours} != Optax's {names_theirs}"
    for n, d, k in ours[len(theirs):]:
        assert k == "KEYWORD_ONLY" and d != "<required>", f"{name}: extra parameter {n} must be keyword-only"
    for (n, d1, _), (_, d2, _) in zip(ours, theirs):
        if callable(d2) or callable(d1) or hasattr(d2, "init"):  # functions and transformations: not comparable
            continue
        assert repr(d1) == repr(d2) or d1 == d2, f"{name}({n}=...): default {d1!r} != Optax's {d2!r}"


NAMESPACES = ["", "losses", "tree", "tree_utils", "transforms", "schedules", "contrib", "projections", "perturbations",
              "assignment", "second_order", "microbatching", "experimental.aggregating"]
_TYPING_AND_MODULE_NAMES = {"Any", "Callable", "NamedTuple", "Optional", "Protocol", "Sequence", "Union", "functools",
                            "typing", "jax", "jnp", "math", "base", "tree", "utils", "MaybeAxis"}


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_every_optax_namespace_name_exists_at_the_same_dotted_path(namespace):
    """``gradtx.X.name`` exists wherever ``optax.X.name`` does (Optax 0.2.8's public names, submodules aside)."""
    import importlib
    import types

    ours = importlib.import_module("gradtx" + ("." + namespace if namespace else ""))
    theirs = optax
    for part in namespace.split(".") if namespace else []:  # optax.experimental.aggregating is an attribute
        if not hasattr(theirs, part):
            importlib.import_module(f"{theirs.__name__}.{part}")
        theirs = getattr(theirs, part)
    names = [n for n in dir(theirs) if not n.startswith("_") and not isinstance(getattr(theirs, n), types.ModuleType)]
    if namespace:  # typing helpers and modules a namespace happens to import are not its API
        names = [n for n in names if n not in _TYPING_AND_MODULE_NAMES]
    missing = [n for n in names if not hasattr(ours, n)]
    assert not missing, f"gradtx.{namespace or '<top>'} lacks {missing}"
    assert len(names) >= 2
