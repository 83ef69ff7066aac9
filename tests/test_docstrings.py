"""Every public name is documented for a user who has only ``help()`` (the rules: ``tests/docrules.py``).

The examples themselves run as doctests (``--doctest-modules`` over ``gradtx/``, configured in pyproject.toml;
``conftest.py`` at the root runs them with JAX's defaults). The checker is tested here on small functions, so a
rule that stopped firing would be noticed.
"""

from __future__ import annotations

from typing import NamedTuple

import docrules
import pytest


def test_every_public_module_has_a_docstring_and_all():
    assert list(docrules.module_problems()) == []


def test_every_public_name_is_documented():
    problems = [p for p in docrules.all_problems() if "module has" not in p]
    assert problems == [], f"{len(problems)} problems, first ones:\n" + "\n".join(problems[:40])


def test_the_public_surface_is_large():
    # The rules would pass vacuously if public_objects() found nothing (a broken __all__ walk).
    objs = docrules.public_objects()
    names = {name for name, _ in objs.values()}
    assert len(objs) > 600
    assert {"gradtx.optimizers.adam_family.adamax", "gradtx.transforms.adam_family.scale_by_adam"} <= names


# The checker on small examples.


def _good(x, y=1):
    """Add.

    Args:
      x: a number.
      y: another. Default 1.

    Returns:
      The sum.

    Raises:
      ValueError: never, in fact.

    Examples:
      >>> _good(1)
      2
    """
    if x is None:
        raise ValueError("x")
    return x + y


def _no_args(x, y=1):
    """Add.

    Returns:
      The sum.

    Examples:
      >>> 1
      1
    """
    return x + y


def _wrong_order(x, y=1):
    """Add.

    Args:
      y: another.
      x: a number.

    Returns:
      The sum.

    Examples:
      >>> 1
      1
    """
    return x + y


def _no_example(x):
    """Identity.

    Args:
      x: anything.

    Returns:
      ``x``.

    Examples:
      x is returned.
    """
    return x


def _raises_undocumented(x):
    """Check.

    Args:
      x: anything.

    Returns:
      ``x``.

    Examples:
      >>> _raises_undocumented(1)
      1
    """
    if x is None:
        raise ValueError("x is None")
    return x


def _no_returns(x):
    """Identity.

    Args:
      x: anything.

    Examples:
      >>> _no_returns(1)
      1
    """
    return x


class _State(NamedTuple):
    """A state.

    Attributes:
      count: the step count.
      mu: the first moment.

    Examples:
      >>> _State(0, 1.0).count
      0
    """

    count: int
    mu: float


@pytest.mark.parametrize(
    ("fn", "fragment"),
    [
        (_no_args, "Args lists [], the signature has ['x', 'y']"),
        (_wrong_order, "Args lists ['y', 'x'], the signature has ['x', 'y']"),
        (_no_example, "no Examples section"),
        (_raises_undocumented, "no Raises section"),
        (_no_returns, "no Returns section"),
    ],
)
def test_checker_finds_each_kind_of_problem(fn, fragment):
    problems = docrules.problems_of(fn.__name__, fn)
    assert any(fragment in p for p in problems), problems


def test_checker_accepts_complete_docstrings():
    assert docrules.problems_of("_good", _good) == []
    assert docrules.problems_of("_State", _State) == []
    assert docrules.problems_of("undocumented", lambda x: x) == ["undocumented: no docstring"]
