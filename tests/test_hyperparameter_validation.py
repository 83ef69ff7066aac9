"""Every option of every public transformation, optimizer, wrapper and schedule is declared and validated.

gradtx objects are frozen pytree dataclasses whose fields declare their kind and range once
(``gradtx.fields``). This file builds every registry entry and every schedule, walks each object's tree, and for
each field of each node:

- asserts that the field is declared (a :class:`gradtx.fields.Check` in its metadata);
- rebuilds the node with each invalid value of its kind (``None``, a string, a list, a dict, a 1-d array, a complex
  number, NaN and a number outside the declared range for a number; a non-bool for a flag; a non-dtype for a dtype;
  a non-callable for a function) and asserts a ``TypeError``/``ValueError`` naming the call and the argument,
  unless the declaration documents the value as valid (``optional=True``: ``None`` means "off"; ``schedule=True``:
  callables).

Recipes (``adam``, ``sgd``, contrib's optimizers) are functions: each public recipe is called with each invalid
value for each numeric and boolean argument, and the error must name the recipe and the argument.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import warnings
from typing import Any

import jax
import numpy as np
import pytest
from registry import ENTRIES
from test_schedules import SCHEDULES

import gradtx
import gradtx.contrib
from gradtx import fields
from gradtx.base import GradientTransformation
from gradtx.schedules import Schedule


def _nodes(obj: Any) -> list[Any]:
    """Every dataclass node of ``obj``'s pytree (``obj`` included), depth first."""
    out: list[Any] = []
    seen: set[int] = set()

    def walk(x: Any) -> None:
        if id(x) in seen:
            return
        seen.add(id(x))
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            out.append(x)
            for f in dataclasses.fields(x):
                walk(getattr(x, f.name, None))
        elif isinstance(x, (list, tuple)):
            for y in x:
                walk(y)
        elif isinstance(x, dict):
            for y in x.values():
                walk(y)

    walk(obj)
    return out


def _more_examples() -> list[Any]:
    """Public classes that no registry entry or schedule case builds."""
    from gradtx import contrib, schedules

    return [
        contrib.ademamix_b3_schedule(0.999, 100),
        schedules.cosine_onecycle_schedule(100, 0.1),
        schedules.linear_onecycle_schedule(100, 0.1),
        schedules.sgdr_schedule([{"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 5, "decay_steps": 50}]),
        contrib.differentially_private_aggregate(l2_norm_clip=1.0, noise_multiplier=0.5, seed=0),
        gradtx.lookahead(gradtx.sgd(0.1), 5, 0.5),
        gradtx.named_chain(("scale", gradtx.scale(0.5))),
        gradtx.scale_by_backtracking_linesearch(max_backtracking_steps=5),
        gradtx.scale_by_zoom_linesearch(max_linesearch_steps=5),
        gradtx.stateless(lambda updates, params: updates),
        gradtx.stateless_with_tree_map(lambda g, p: g),
    ]


def _examples() -> dict[type, Any]:
    """One valid instance of every class reachable from the registry and the schedule cases."""
    found: dict[type, Any] = {}
    roots = [e.make() for e in ENTRIES] + list(SCHEDULES.values()) + _more_examples()
    for root in roots:
        for node in _nodes(root):
            if isinstance(node, (GradientTransformation, Schedule)):
                found.setdefault(type(node), node)
    return found


EXAMPLES = _examples()
CLASSES = sorted(EXAMPLES, key=lambda c: (c.__module__, c.__name__))


def _public_classes() -> set[type]:
    names = [(gradtx, n) for n in gradtx.__all__] + [(gradtx.contrib, n) for n in gradtx.contrib.__all__]
    out = set()
    for module, name in names:
        obj = getattr(module, name)
        transformation = isinstance(obj, type) and issubclass(obj, (GradientTransformation, Schedule))
        if transformation and dataclasses.is_dataclass(obj):
            out.add(obj)
    return out


def test_every_public_class_is_exercised():
    missing = sorted(c.__name__ for c in _public_classes() - set(EXAMPLES))
    assert not missing, f"public classes built by no registry entry or schedule case: {missing}"


@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
def test_every_field_is_declared(cls):
    bare = [f.name for f in dataclasses.fields(cls) if "check" not in f.metadata]
    assert not bare, f"{cls.__name__}: fields without a declared kind (gradtx.fields): {bare}"


NAN = float("nan")


def _bad_values(check: fields.Check) -> list[Any]:
    """The invalid values of ``check``'s kind, minus those it documents as valid."""
    if check.kind == "number":
        bad: list[Any] = ["0.1", [0.1], {"a": 0.1}, np.ones(2), 1 + 2j, NAN, True]
        if not check.optional:
            bad.append(None)
        if not check.schedule:
            bad.append(lambda count: 0.1)
        if (v := check.out_of_range()) is not None:
            bad.append(v)
        if check.integer:
            bad.append(1.5)
        return bad
    if check.kind == "flag":
        return ["yes", 1, [True]] + ([] if check.optional else [None])
    if check.kind == "dtype":
        return ["not a dtype", 3, np.int32] + ([] if check.optional else [None])
    if check.kind == "function":
        return [3, "f"] + ([] if check.optional else [None])
    if check.kind == "choice":
        return ["no such choice", [check.choices[0]]]
    return []


def _describe(v: Any) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if callable(v):
        return "<function>"
    return repr(v) if not isinstance(v, np.ndarray) else f"array{v.shape}"


CASES = [
    (cls, f.name, bad)
    for cls in CLASSES
    for f in dataclasses.fields(cls)
    if f.init and "check" in f.metadata
    for bad in _bad_values(f.metadata["check"])
]


@pytest.mark.parametrize(
    "cls,name,bad", CASES, ids=[f"{c.__name__}.{n}={_describe(b)}" for c, n, b in CASES]
)
def test_invalid_option_is_refused_naming_call_and_argument(cls, name, bad):
    node = EXAMPLES[cls]
    with pytest.raises((TypeError, ValueError)) as info:
        dataclasses.replace(node, **{name: bad})
    message = str(info.value)
    assert message.startswith(f"{cls.__name__}(") or f"{cls.__name__}(" in message, message
    assert name in message, message


def test_equal_masks_of_numpy_booleans_give_equal_tree_definitions():
    mask = {"w": np.array(True), "b": np.array(False)}
    a = gradtx.masked(gradtx.scale(0.5), mask)
    b = gradtx.masked(gradtx.scale(0.5), {"w": np.array(True), "b": np.array(False)})
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    c = gradtx.masked(gradtx.scale(0.5), {"w": np.array(False), "b": np.array(False)})
    assert jax.tree_util.tree_structure(a) != jax.tree_util.tree_structure(c)


def test_a_traced_hyperparameter_is_checked_for_kind_not_range():
    def build(b1):
        return gradtx.scale_by_adam(b1=b1).b1

    assert float(jax.jit(build)(0.5)) == 0.5
    with pytest.raises(TypeError, match=r"scale_by_adam\(b1=<traced"):
        jax.jit(build)(np.ones(2))


# --- recipes -----------------------------------------------------------------------------------------

# valid values for the recipes' required arguments (a test fails below for a recipe requiring anything else)
VALID_REQUIRED = {"learning_rate": 0.1, "l2_norm_clip": 1.0, "noise_multiplier": 0.5, "seed": 0}


def _recipes() -> list[Any]:
    names = [(gradtx, n) for n in gradtx.__all__] + [(gradtx.contrib, n) for n in gradtx.contrib.__all__]
    out = {}
    for module, name in names:
        fn = getattr(module, name)
        if getattr(fn, "__gradtx_recipe__", False):
            out[fn.__name__] = fn
    return [out[k] for k in sorted(out)]


RECIPES = _recipes()


def test_the_optimizers_are_recipes():
    names = {fn.__name__ for fn in RECIPES}
    expected = {"sgd", "adam", "adamw", "rmsprop", "adagrad", "lion", "adafactor", "lamb", "lars", "nadam", "radam"}
    assert expected <= names, sorted(expected - names)


def _spec_in(tx: Any, name: str) -> fields.Check | None:
    for node in _nodes(tx):
        for f in dataclasses.fields(node):
            if f.name == name and "check" in f.metadata:
                return f.metadata["check"]
    return None


def _required(fn: Any) -> dict[str, Any]:
    params = inspect.signature(fn).parameters.values()
    return {
        p.name: VALID_REQUIRED.get(p.name, inspect.Parameter.empty)
        for p in params
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


@pytest.mark.parametrize("fn", RECIPES, ids=[f.__name__ for f in RECIPES])
def test_recipe_required_arguments_are_known(fn):
    unknown = [n for n, v in _required(fn).items() if v is inspect.Parameter.empty]
    assert not unknown, f"{fn.__name__}: add a valid value for {unknown} to VALID_REQUIRED"


def _recipe_cases() -> list[tuple[Any, dict[str, Any], str, Any]]:
    cases = []
    for fn in RECIPES:
        required = _required(fn)
        if any(v is inspect.Parameter.empty for v in required.values()):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # noisy recipes without a key warn; optimistic_adam is deprecated
            default_tx = fn(**required)
        off_when_none = getattr(fn, "__gradtx_off_when_none__", ())
        for p in inspect.signature(fn).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            value = required.get(p.name, p.default)
            if p.name.endswith("mask"):
                continue  # a mask: a bool, a tree of bools or a function (checked by the masked block)
            if isinstance(value, bool):
                check = fields.Check("flag")
            elif isinstance(value, (int, float)) or (value is None and p.name in VALID_REQUIRED):
                spec = _spec_in(default_tx, p.name) or fields.Check("number", schedule=True)
                optional = spec.optional or value is None or p.name in off_when_none
                check = dataclasses.replace(spec, optional=optional)
            else:
                continue
            cases.extend((fn, required, p.name, bad) for bad in _bad_values(check))
    return cases


RECIPE_CASES = _recipe_cases()


@pytest.mark.filterwarnings("ignore:.*no key given", "ignore::DeprecationWarning")
@pytest.mark.parametrize(
    "fn,required,name,bad",
    RECIPE_CASES,
    ids=[f"{f.__name__}.{n}={_describe(b)}" for f, _, n, b in RECIPE_CASES],
)
def test_invalid_recipe_argument_is_refused_naming_recipe_and_argument(fn, required, name, bad):
    with pytest.raises((TypeError, ValueError)) as info:
        fn(**{**required, name: bad})
    message = str(info.value)
    assert message.startswith(f"{fn.__name__}({name}="), message


def test_the_field_functions_examples_run():
    import doctest

    import gradtx.fields.declare

    result = doctest.testmod(gradtx.fields.declare, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 12 and result.failed == 0, result
