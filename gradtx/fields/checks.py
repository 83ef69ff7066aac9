"""What an option accepts: the errors, the values and :class:`Check`, the one validator of gradtx's options."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import numbers
import sys
from collections.abc import Iterator
from typing import Any, cast

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover - Python 3.10
    pass

import jax
import numpy as np
from jax import core as jax_core

__all__ = [
    "Check",
    "HyperparameterError",
    "InvalidType",
    "InvalidValue",
    "concrete_number",
    "fail",
    "format_value",
    "is_placeholder",
    "run_time_values",
    "short_repr",
]

# --------------------------------------------------------------------------------------------------
# Errors.
# --------------------------------------------------------------------------------------------------


class HyperparameterError(Exception):
    """Mixin of the errors raised for an invalid option; carries ``call``, ``name`` and ``value``.

    Every refused option raises an :class:`InvalidValue` or :class:`InvalidType`, both subclasses of this
    one, with the message ``call(name=value): name requirement``. Catch ``HyperparameterError`` to catch
    both; read ``call`` (the class or recipe refusing it), ``name`` (the argument) and ``value`` (what was
    given) to react programmatically.

    Examples:
      >>> import gradtx
      >>> from gradtx.fields import HyperparameterError
      >>> try:
      ...     gradtx.scale_by_adam(b1=1.2)
      ... except HyperparameterError as e:
      ...     print(e.call, e.name, e.value)
      scale_by_adam b1 1.2
    """

    call: str = ""
    name: str = ""
    value: Any = None


class InvalidValue(HyperparameterError, ValueError):
    """An option of the right kind with an invalid value (NaN, infinite, out of range).

    A ``ValueError`` (and a :class:`HyperparameterError`).

    Examples:
      >>> import gradtx
      >>> try:
      ...     gradtx.scale_by_adam(b1=1.2)
      ... except ValueError as e:
      ...     print(type(e).__name__, e)
      InvalidValue scale_by_adam(b1=1.2): b1 must be in [0, 1)
    """


class InvalidType(HyperparameterError, TypeError, ValueError):
    """An option of the wrong kind (None where a number is needed, a string, a list, a complex number, ...).

    A ``TypeError``, and also a ``ValueError`` so that code catching invalid options as ``ValueError`` (the
    only error gradtx raised for them before its options were typed) keeps working.

    Examples:
      >>> import gradtx
      >>> try:
      ...     gradtx.scale_by_adam(b1="0.9")
      ... except TypeError as e:
      ...     print(type(e).__name__, e)
      InvalidType scale_by_adam(b1='0.9'): b1 must be a real number in [0, 1), not str
    """


def short_repr(x: Any) -> str:
    """A value as an error message shows it: arrays by dtype and shape, long reprs cut.

    Args:
      x: any value.

    Returns:
      ``<traced float32[3]>`` for a tracer, ``<array float32[2, 3]>`` for an array that is not 0-d, else
      ``repr(x)``, cut to 80 characters (ending in ``...``).

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.fields import short_repr
      >>> short_repr(jnp.ones((2, 3))), short_repr(0.5), short_repr("x" * 100)[-5:]
      ('<array float32[2, 3]>', '0.5', 'xx...')
    """
    if isinstance(x, jax_core.Tracer):
        return f"<traced {x.dtype}{list(x.shape)}>"
    if isinstance(x, (np.ndarray, jax.Array)) and np.ndim(x) > 0:
        return f"<array {x.dtype}{list(np.shape(x))}>"
    text = repr(x)
    return text if len(text) <= 80 else text[:77] + "..."


def fail(call: str, name: str, value: Any, requirement: str, kind: type[HyperparameterError] = InvalidValue) -> None:
    """Raise ``kind`` (:class:`InvalidValue` or :class:`InvalidType`) as ``call(name=value): name requirement``.

    The one way gradtx refuses an option, so that every message has the same form and every error carries
    ``call``, ``name`` and ``value``. It never returns.

    Args:
      call: the function or class refusing the value (``"scale_by_adam"``).
      name: the argument's name.
      value: the value given (shown by :func:`short_repr`).
      requirement: what is wrong, continuing the sentence after the name (``"must be >= 0"``).
      kind: the exception class: :class:`InvalidValue` (the default: a ``ValueError``) or
        :class:`InvalidType` (a ``TypeError``).

    Raises:
      HyperparameterError: always, of class ``kind``: ``call(name=value): name requirement``.

    Examples:
      >>> from gradtx.fields import fail
      >>> try:
      ...     fail("my_block", "eps", -1.0, "must be >= 0")
      ... except ValueError as e:
      ...     print(e, e.name)
      my_block(eps=-1.0): eps must be >= 0 eps
    """
    err = kind(f"{call}({name}={short_repr(value)}): {name} {requirement}")
    err.call, err.name, err.value = call, name, value
    raise err


# --------------------------------------------------------------------------------------------------
# Values.
# --------------------------------------------------------------------------------------------------


def is_tracer(x: Any) -> bool:
    """Whether ``x`` is a JAX tracer (a value known only when the program runs)."""
    return isinstance(x, jax_core.Tracer)


_RUN_TIME_VALUES = contextvars.ContextVar("gradtx_run_time_values", default=False)


@contextlib.contextmanager
def run_time_values() -> Iterator[None]:
    """Within this block, JAX arrays count as values computed at run time: their range is not checked.

    Their kind and shape still are, as for tracers, so a transformation rebuilt from such values behaves the
    same eagerly and under ``jit``. ``inject_hyperparams`` rebuilds its inner transformation in one at every
    step from schedule values and state entries; Python and NumPy numbers are still checked. A context
    manager (a ``contextvars`` flag: thread- and task-local), restored on exit.

    Yields:
      ``None``.

    Example:
      >>> import jax.numpy as jnp, gradtx
      >>> with gradtx.fields.run_time_values():
      ...     tx = gradtx.scale_by_adam(b1=jnp.asarray(1.5))  # not refused: a run-time value
    """
    token = _RUN_TIME_VALUES.set(True)
    try:
        yield
    finally:
        _RUN_TIME_VALUES.reset(token)


def concrete_number(x: Any) -> float | None:
    """``x`` as a Python float if it is a concrete real scalar (a bool counts as 0 or 1), else ``None``.

    Args:
      x: any value: a Python number, a NumPy or JAX scalar or 0-d array, a tracer, anything else.

    Returns:
      ``float(x)`` for a concrete real scalar; ``None`` for tracers, arrays that are not 0-d, complex numbers
      and anything else.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.fields import concrete_number
      >>> concrete_number(jnp.asarray(0.5)), concrete_number(True), concrete_number(jnp.ones(2))
      (0.5, 1.0, None)
    """
    if isinstance(x, numbers.Real):
        return float(x)
    if is_tracer(x):
        return None
    if isinstance(x, (np.ndarray, np.generic, jax.Array)) and np.ndim(x) == 0:
        if np.iscomplexobj(x):
            return None
        try:
            return float(x)
        except Exception:
            return None
    return None


def is_placeholder(x: Any) -> bool:
    """Whether ``x`` is not a plain Python value to validate (a tracer, an array, None, a sentinel).

    Args:
      x: any value.

    Returns:
      False for a Python ``int``, ``float``, ``complex`` or ``str``; True for anything else.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.fields import is_placeholder
      >>> is_placeholder(0.1), is_placeholder(None), is_placeholder(jnp.ones(2))
      (False, True, True)
    """
    return not isinstance(x, (int, float, complex, str))


def _is_dtype(x: Any) -> bool:
    if x is None or (isinstance(x, str) and not x):
        return False
    try:
        np.dtype(x)
        return True
    except TypeError:
        return False


def format_value(x: Any) -> str:
    """How a hyperparameter reads in a repr: Python numbers as written, tracers as ``<traced>``.

    Args:
      x: a field's value.

    Returns:
      ``<traced>`` for a tracer; the Python float of a concrete 0-d array; a dtype's name (``bfloat16``); a
      plain function's qualified name; else ``repr(x)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.fields import format_value
      >>> format_value(0.1), format_value(jnp.bfloat16), format_value(abs), format_value(jnp.asarray(2.0))
      ('0.1', 'bfloat16', 'abs', '2.0')
    """
    if is_tracer(x):
        return "<traced>"
    if isinstance(x, (np.ndarray, np.generic, jax.Array)) and np.ndim(x) == 0:
        v = concrete_number(x)
        return repr(v) if v is not None else repr(x)
    if isinstance(x, (type, np.dtype)):
        return np.dtype(x).name if _is_dtype(x) else repr(x)
    if callable(x) and hasattr(x, "__qualname__") and not hasattr(x, "init"):
        return cast(str, x.__qualname__)
    return repr(x)


def _interval(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    def num(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else repr(v)

    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{num(lo)}, {num(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {num(lo)}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {num(hi)}"
    return "finite"


# --------------------------------------------------------------------------------------------------
# Declarations.
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Check:
    """What one field accepts. Built by the field functions of ``gradtx.fields`` (:func:`hyper`, :func:`flag`, ...).

    A frozen dataclass stored in each field's metadata (``field.metadata["check"]``). Calling it,
    ``check(call, name, value)``, returns the value to store (normalised: a dtype to ``np.dtype``, a plain
    schedule function wrapped static) or raises :class:`InvalidType` / :class:`InvalidValue` with the message
    ``call(name=value): name must be ...``; :meth:`describe` says what is valid in those words.

    Args:
      kind: ``"number"`` (a real scalar leaf), ``"flag"`` (a bool), ``"dtype"``, ``"function"`` (a callable),
        ``"choice"`` (one of ``choices``) or ``"any"`` (declared, checked by ``__check_init__`` if at all).
        Default ``"number"``.
      lo: the lower bound of a number (``None``: unbounded). A number with no bound must be finite.
      hi: the upper bound of a number (``None``: unbounded).
      lo_open: exclude ``lo`` itself. Default False.
      hi_open: exclude ``hi`` itself. Default False.
      integer: a number must be a whole number. Default False.
      optional: ``None`` is accepted (and kept). Default False.
      schedule: a callable ``count -> value`` is accepted for a number (wrapped by :func:`as_pytree_callable`).
        Default False.
      real_only: a dtype must be a real floating dtype (second moments are real also for complex parameters).
        Default False.
      choices: the accepted values of a ``"choice"``.
      accepts: for ``"any"``, a sentence saying what is accepted (shown by :meth:`describe`).
      static: a number is part of the tree definition (stored as a Python number; traced values refused).
        Default False.

    Examples:
      >>> from gradtx.fields import Check
      >>> check = Check("number", lo=0.0, hi=1.0, hi_open=True)
      >>> check.describe(), check("my_block", "b1", 0.5)
      ('a real number in [0, 1)', 0.5)
      >>> try:
      ...     check("my_block", "b1", 1.2)
      ... except ValueError as e:
      ...     print(e)
      my_block(b1=1.2): b1 must be in [0, 1)
    """

    kind: str = "number"
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False
    optional: bool = False
    schedule: bool = False
    real_only: bool = False
    choices: tuple[Any, ...] = ()
    accepts: str = ""
    static: bool = False

    def describe(self) -> str:
        """What is valid, as an error message says it (``a real number in [0, 1)``)."""
        if self.kind == "number":
            what = "a whole number" if self.integer else "a real number"
            bounds = _interval(self.lo, self.hi, self.lo_open, self.hi_open)
            text = f"a finite {what[2:]}" if bounds == "finite" else f"{what} {bounds}"
            if self.schedule:
                text += " or a schedule count -> value"
        elif self.kind == "flag":
            text = "True or False"
        elif self.kind == "dtype":
            text = f"a {'real ' if self.real_only else ''}floating dtype (e.g. jnp.bfloat16)"
        elif self.kind == "function":
            text = "a callable"
        elif self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            text = self.accepts or "any value"
        return f"None or {text}" if self.optional else text

    def out_of_range(self) -> float | None:
        """A real number this check refuses by its range (``None`` if it has no bound), for tests."""
        if self.kind != "number":
            return None
        if self.lo is not None:
            return self.lo - 1.0 if not self.lo_open else self.lo - 0.5
        if self.hi is not None:
            return self.hi + 1.0
        return None

    def __call__(self, call: str, name: str, value: Any) -> Any:
        """The value to store (normalised) if ``value`` is valid; raise :class:`HyperparameterError` if not."""
        if value is None:
            if self.optional:
                return None
            fail(call, name, value, f"must be {self.describe()}, not None", InvalidType)
        if self.kind == "number":
            return self._number(call, name, value)
        if self.kind == "flag":
            if not isinstance(value, (bool, np.bool_)):
                fail(call, name, value, f"must be True or False, not {type(value).__name__}", InvalidType)
            return bool(value)
        if self.kind == "dtype":
            return self._dtype(call, name, value)
        if self.kind == "function":
            if not callable(value):
                fail(call, name, value, f"must be a callable, not {type(value).__name__}", InvalidType)
            return value
        if self.kind == "choice":
            if isinstance(value, (list, dict, set)) or value not in self.choices:
                fail(call, name, value, f"must be {self.describe()}")
            return value
        return value

    def _number(self, call: str, name: str, value: Any) -> Any:
        if callable(value) and not isinstance(value, (np.ndarray, jax.Array)):
            if self.schedule:
                from gradtx.fields.static import as_pytree_callable

                return as_pytree_callable(value)
            fail(call, name, value, f"must be {self.describe()} (a schedule is not supported here)", InvalidType)
        if isinstance(value, (bool, np.bool_)):
            fail(call, name, value, f"must be {self.describe()}, not a bool", InvalidType)
        if isinstance(value, (complex, np.complexfloating)) or (
            isinstance(value, (np.ndarray, jax.Array)) and np.iscomplexobj(value)
        ):
            fail(call, name, value, f"must be {self.describe()}, not complex", InvalidType)
        if isinstance(value, jax.ShapeDtypeStruct):
            return value  # a placeholder (jax.eval_shape): nothing to check
        if isinstance(value, (np.ndarray, np.generic, jax.Array)):
            if np.ndim(value) != 0:
                fail(call, name, value, f"must be {self.describe()} (a 0-d array), not shape {np.shape(value)}",
                     InvalidType)
            dt = np.dtype(value.dtype)
            if not (np.issubdtype(dt, np.integer) or np.issubdtype(dt, np.floating) or dt.name == "bfloat16"):
                fail(call, name, value, f"must be {self.describe()}, not of dtype {dt.name}", InvalidType)
            if self.static and is_tracer(value) and not _RUN_TIME_VALUES.get():
                fail(call, name, value, f"must be {self.describe()} known when the transformation is built (it is "
                     "static: part of the tree structure), not a traced value", InvalidType)
            if is_tracer(value) or (isinstance(value, jax.Array) and _RUN_TIME_VALUES.get()):
                return value  # a run-time value: its range is the documented runtime policy's
        elif not isinstance(value, numbers.Real):
            fail(call, name, value, f"must be {self.describe()}, not {type(value).__name__}", InvalidType)
        v = concrete_number(value)
        if v is None:  # pragma: no cover - every real scalar is concrete here
            return value
        ok = not math.isnan(v)
        if self.lo is not None:
            ok = ok and (v > self.lo if self.lo_open else v >= self.lo)
        if self.hi is not None:
            ok = ok and (v < self.hi if self.hi_open else v <= self.hi)
        if self.lo is None and self.hi is None:
            ok = ok and math.isfinite(v)
        if self.integer and ok:
            ok = math.isfinite(v) and v.is_integer()
        if not ok:
            bounds = _interval(self.lo, self.hi, self.lo_open, self.hi_open)
            if self.integer:
                bounds = "a whole number" + ("" if bounds == "finite" else f" {bounds}")
            fail(call, name, value, f"must be {bounds}")
        if self.static and not isinstance(value, numbers.Real):
            return int(v) if self.integer else v  # static: held as a Python number in the tree definition
        return value

    def _dtype(self, call: str, name: str, value: Any) -> Any:
        import jax.numpy as jnp

        dt = np.dtype(value) if _is_dtype(value) and not isinstance(value, (list, dict)) else None
        kinds = (jnp.floating,) if self.real_only else (jnp.floating, jnp.complexfloating)
        if dt is None or not any(jnp.issubdtype(dt, k) for k in kinds):
            fail(call, name, value, f"must be {self.describe()}",
                 InvalidType if dt is None else InvalidValue)
        return dt
