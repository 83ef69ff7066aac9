"""Declaring options: the field functions, the generated validation, pytree classes and recipes."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, overload

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover - Python 3.10
    from typing_extensions import dataclass_transform

import jax

from gradtx.fields.checks import (
    Check,
    HyperparameterError,
    InvalidValue,
    fail,
    format_value,
    short_repr,
)

__all__ = [
    "ValidationMixin",
    "choice",
    "dtype_option",
    "fields_repr",
    "flag",
    "function",
    "hyper",
    "integer",
    "non_negative",
    "option",
    "positive",
    "probability",
    "pytree_class",
    "real",
    "recipe",
    "scalar_or_schedule",
    "state_dtype",
    "static_field",
    "validate_fields",
]

_T = TypeVar("_T")
_P = ParamSpec("_P")
_MISSING: Any = dataclasses.MISSING


def _field(check: Check, default: Any, static: bool, **kwargs: Any) -> Any:
    metadata = {"check": check, **({"static": True} if static else {}), **kwargs.pop("metadata", {})}
    if default is not _MISSING:
        kwargs["default"] = default
    return dataclasses.field(metadata=metadata, **kwargs)


def hyper(
    default: Any = _MISSING,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    integer: bool = False,
    optional: bool = False,
    schedule: bool = False,
    static: bool = False,
    **kwargs: Any,
) -> Any:
    """A numeric hyperparameter: a real scalar in a range (a leaf unless ``static``).

    Args:
      default: the default value (none: a required argument).
      lo: the lower bound (``None``: unbounded). Unbounded on both sides means any finite number.
      hi: the upper bound (``None``: unbounded).
      lo_open: exclude ``lo`` itself (``> lo`` rather than ``>= lo``). Default False.
      hi_open: exclude ``hi`` itself. Default False.
      integer: only whole numbers (``1``, ``2.0``). Default False.
      optional: ``None`` is valid (it means the option is off). Default False.
      schedule: a callable ``count -> value`` is valid too. Default False.
      static: part of the tree definition instead of a leaf (a shape or a count the program depends on): a 0-d
        array is stored as a Python number, a traced value is refused. Default False.
      **kwargs: passed to :func:`dataclasses.field` (``kw_only``, ``repr``).

    Returns:
      A dataclass field carrying its :class:`Check`.

    Example:
      >>> from typing import Any
      >>> from gradtx.fields import hyper, pytree_class
      >>> @pytree_class
      ... class Block:
      ...     x: Any = hyper(default=0.5, lo=0.0, hi=1.0, hi_open=True)
      >>> Block(0.25).x
      0.25
      >>> try:
      ...     Block(1.0)
      ... except ValueError as e:
      ...     print(e)
      Block(x=1.0): x must be in [0, 1)
    """
    check = Check("number", lo, hi, lo_open, hi_open, integer, optional, schedule, static=static)
    return _field(check, default, static, **kwargs)


def real(default: Any = _MISSING, **kwargs: Any) -> Any:
    """Any finite real number (see :func:`hyper` for the options).

    Args:
      default: the default value (omitted: a required argument).
      **kwargs: the options of :func:`hyper` (``optional``, ``schedule``, ``static``) and of
        :func:`dataclasses.field` (``kw_only``, ``repr``).

    Returns:
      a dataclass field carrying its :class:`Check` (validated when the object is built).

    Example:
      >>> from typing import Any
      >>> from gradtx.fields import real, pytree_class
      >>> @pytree_class
      ... class Block:
      ...     x: Any = real(default=0.0)
      >>> Block(2.5).x
      2.5
      >>> try:
      ...     Block(float("nan"))
      ... except ValueError as e:
      ...     print(e)
      Block(x=nan): x must be finite
    """
    return hyper(default, **kwargs)


def non_negative(default: Any = _MISSING, **kwargs: Any) -> Any:
    """A real number ``>= 0`` (an epsilon, a weight decay, an initial accumulator).

    Args:
      default: the default value (omitted: a required argument).
      **kwargs: the options of :func:`hyper` (``optional``, ``schedule``, ``static``) and of
        :func:`dataclasses.field` (``kw_only``, ``repr``).

    Returns:
      a dataclass field carrying its :class:`Check` (validated when the object is built).

    Example:
      >>> from typing import Any
      >>> from gradtx.fields import non_negative, pytree_class
      >>> @pytree_class
      ... class Block:
      ...     x: Any = non_negative(default=1e-8)
      >>> Block(0.0).x
      0.0
      >>> try:
      ...     Block(-1.0)
      ... except ValueError as e:
      ...     print(e)
      Block(x=-1.0): x must be >= 0
    """
    return hyper(default, lo=0.0, **kwargs)


def positive(default: Any = _MISSING, **kwargs: Any) -> Any:
    """A real number ``> 0`` (a norm bound, a step count).

    Args:
      default: the default value (omitted: a required argument).
      **kwargs: the options of :func:`hyper` (``optional``, ``schedule``, ``static``) and of
        :func:`dataclasses.field` (``kw_only``, ``repr``).

    Returns:
      a dataclass field carrying its :class:`Check` (validated when the object is built).

    Example:
      >>> from typing import Any
      >>> from gradtx.fields import positive, pytree_class
      >>> @pytree_class
      ... class Block:
      ...     x: Any = positive(default=1.0)
      >>> Block(0.5).x
      0.5
      >>> try:
      ...     Block(0.0)
      ... except ValueError as e:
      ...     print(e)
      Block(x=0.0): x must be > 0
    """
    return hyper(default, lo=0.0, lo_open=True, **kwargs)


def probability(default: Any = _MISSING, *, closed: bool = False, **kwargs: Any) -> Any:
    """A decay rate: a real number in ``[0, 1)`` (``[0, 1]`` when ``closed``).

    Args:
      default: the default value (omitted: a required argument).
      closed: also accept 1 (default ``False``).
      **kwargs: the options of :func:`hyper` (``optional``, ``schedule``, ``static``) and of
        :func:`dataclasses.field` (``kw_only``, ``repr``).

    Returns:
      a dataclass field carrying its :class:`Check` (validated when the object is built).

    Example:
      >>> from typing import Any
      >>> from gradtx.fields import probability, pytree_class
      >>> @pytree_class
      ... class Block:
      ...     x: Any = probability(default=0.9)
      >>> Block(0.5).x
      0.5
      >>> try:
      ...     Block(1.2)
      ... except ValueError as e:
      ...     print(e)
      Block(x=1.2): x must be in [0, 1)
    """
    return hyper(default, lo=0.0, hi=1.0, hi_open=not closed, **kwargs)


def integer(default: Any = _MISSING, *, lo: float | None = None, **kwargs: Any) -> Any:
    """A whole number ``>= lo`` (a step count, a period).

    Args:
      default: the default value (omitted: a required argument).
      lo: the smallest valid value (``None``: unbounded).
      **kwargs: the options of :func:`hyper` (``optional``, ``schedule``, ``static``) and of
        :func:`dataclasses.field` (``kw_only``, ``repr``).

    Returns:
      a dataclass field carrying its :class:`Check` (validated when the object is built).

    Example:
      >>> from typing import Any
      >>> from gradtx.fields import integer, pytree_class
      >>> @pytree_class
      ... class Block:
      ...     x: Any = integer(default=1, lo=1)
      >>> Block(3).x
      3
      >>> try:
      ...     Block(1.5)
      ... except ValueError as e:
      ...     print(e)
      Block(x=1.5): x must be a whole number >= 1
    """
    return hyper(default, lo=lo, integer=True, **kwargs)


def scalar_or_schedule(default: Any = _MISSING, **kwargs: Any) -> Any:
    """A finite real number or a schedule ``count -> value`` (a learning rate).

    Args:
      default: the default value (omitted: a required argument).
      **kwargs: the options of :func:`hyper` (``optional``, ``schedule``, ``static``) and of
        :func:`dataclasses.field` (``kw_only``, ``repr``).

    Returns:
      a dataclass field carrying its :class:`Check` (validated when the object is built).

    Example:
      >>> from typing import Any
      >>> from gradtx.fields import scalar_or_schedule, pytree_class
      >>> @pytree_class
      ... class Block:
      ...     x: Any = scalar_or_schedule(default=0.1)
      >>> Block(0.01).x
      0.01
      >>> try:
      ...     Block("0.1")
      ... except ValueError as e:
      ...     print(e)
      Block(x='0.1'): x must be a finite real number or a schedule count -> value, not str
    """
    return hyper(default, schedule=True, **kwargs)


def flag(default: Any = _MISSING, **kwargs: Any) -> Any:
    """A static ``True``/``False`` option (``nesterov``, ``bias_correction``, ...).

    Args:
      default: the default value (omitted: a required argument).
      **kwargs: passed to :func:`dataclasses.field` (``kw_only``, ``repr``).

    Returns:
      a dataclass field carrying its :class:`Check` (validated when the object is built).

    Example:
      >>> from typing import Any
      >>> from gradtx.fields import flag, pytree_class
      >>> @pytree_class
      ... class Block:
      ...     x: Any = flag(default=False)
      >>> Block(True).x
      True
      >>> try:
      ...     Block("yes")
      ... except ValueError as e:
      ...     print(e)
      Block(x='yes'): x must be True or False, not str
    """
    return _field(Check("flag"), default, True, **kwargs)


def dtype_option(default: Any = None, *, real_only: bool = False, optional: bool = True, **kwargs: Any) -> Any:
    """A static dtype option, normalised to ``np.dtype`` (``None``, the default, means the parameter dtype).

    Args:
      default: the default dtype or ``None``.
      real_only: only real floating dtypes (a second moment; default ``False``).
      optional: ``None`` is valid (default ``True``).
      **kwargs: passed to :func:`dataclasses.field` (``kw_only``, ``repr``).

    Returns:
      a dataclass field carrying its :class:`Check` (validated when the object is built).

    Example:
      >>> from typing import Any
      >>> from gradtx.fields import dtype_option, pytree_class
      >>> @pytree_class
      ... class Block:
      ...     x: Any = dtype_option(default=None)
      >>> Block("bfloat16").x
      dtype(bfloat16)
      >>> try:
      ...     Block("int32")
      ... except ValueError as e:
      ...     print(e)
      Block(x='int32'): x must be None or a floating dtype (e.g. jnp.bfloat16)
    """
    return _field(Check("dtype", optional=optional, real_only=real_only), default, True, **kwargs)


def state_dtype(*, default: None = None, real_only: bool = False) -> Any:
    """The dtype of a state leaf that gradtx adds after Optax's parameters (``nu_dtype``; ``mu_dtype`` where Optax
    has none): keyword-only, default ``None`` (the parameter dtype), shown in the ``repr`` only when set. (Write
    ``default=None`` at the call: type checkers read a field's default from that keyword.)

    Args:
      default: ``None`` (the parameter's dtype); the only valid default.
      real_only: only real floating dtypes (a second moment, real also for complex parameters).

    Returns:
      A static, keyword-only dataclass field carrying its :class:`Check`.

    Example:
      >>> import gradtx
      >>> gradtx.scale_by_adam(nu_dtype="bfloat16")
      scale_by_adam(b1=0.9, b2=0.999, eps=1e-08, eps_root=0.0, mu_dtype=None, nesterov=False, nu_dtype=bfloat16)
    """
    return dtype_option(default, real_only=real_only, kw_only=True, repr=False, metadata={"show_when_set": True})


def function(default: Any = _MISSING, *, optional: bool = False, **kwargs: Any) -> Any:
    """A static callable option (a user's function, held by identity).

    Args:
      default: the default value (omitted: a required argument).
      optional: ``None`` is valid (default ``False``).
      **kwargs: passed to :func:`dataclasses.field` (``kw_only``, ``repr``).

    Returns:
      a dataclass field carrying its :class:`Check` (validated when the object is built).

    Example:
      >>> from typing import Any
      >>> from gradtx.fields import function, pytree_class
      >>> @pytree_class
      ... class Block:
      ...     x: Any = function(default=abs)
      >>> Block(len).x
      <built-in function len>
      >>> try:
      ...     Block(3)
      ... except ValueError as e:
      ...     print(e)
      Block(x=3): x must be a callable, not int
    """
    return _field(Check("function", optional=optional), default, True, **kwargs)


def choice(default: Any = _MISSING, choices: tuple[Any, ...] = (), **kwargs: Any) -> Any:
    """A static option taking one of ``choices`` (no ``default``: a required argument).

    Args:
      default: the default value (omitted: a required argument).
      choices: the valid values.
      **kwargs: passed to :func:`dataclasses.field` (``kw_only``, ``repr``).

    Returns:
      a dataclass field carrying its :class:`Check` (validated when the object is built).

    Example:
      >>> from typing import Any
      >>> from gradtx.fields import choice, pytree_class
      >>> @pytree_class
      ... class Block:
      ...     x: Any = choice(default="a", choices=("a", "b"))
      >>> Block("b").x
      'b'
      >>> try:
      ...     Block("c")
      ... except ValueError as e:
      ...     print(e)
      Block(x='c'): x must be one of 'a', 'b'
    """
    return _field(Check("choice", choices=tuple(choices)), default, True, **kwargs)


def option(default: Any = _MISSING, *, accepts: str, static: bool = False, optional: bool = False,
           **kwargs: Any) -> Any:
    """A declared option of another kind (a transformation, a mask, a tree, a key): ``accepts`` says what is
    valid, and the class's ``__check_init__`` checks it where it can.

    Args:
      default: the default value (omitted: a required argument).
      accepts: what is valid, in words (shown in error messages and by :meth:`Check.describe`).
      static: part of the tree definition instead of a leaf (default ``False``).
      optional: ``None`` is valid (default ``False``).
      **kwargs: passed to :func:`dataclasses.field` (``kw_only``, ``repr``).

    Returns:
      A dataclass field carrying its :class:`Check`.

    Example:
      >>> from gradtx.fields import option
      >>> option(accepts="a transformation").metadata["check"].describe()
      'a transformation'
    """
    return _field(Check("any", optional=optional, accepts=accepts), default, static, **kwargs)


def static_field(**kwargs: Any) -> Any:
    """A static field (part of the tree definition) with no declared check.

    For a structural option whose validation, if any, is in the class's ``__check_init__``. Static values
    must be hashable and compare by value (equal objects give equal tree definitions, so a jitted step does
    not retrace).

    Args:
      **kwargs: passed to :func:`dataclasses.field` (``default``, ``kw_only``, ``repr``, ``metadata``).

    Returns:
      A dataclass field marked static.

    Example:
      >>> from typing import Any
      >>> import jax
      >>> from gradtx.fields import pytree_class, real, static_field
      >>> @pytree_class
      ... class Block:
      ...     x: Any = real(default=1.0)
      ...     name: str = static_field(default="b")
      >>> jax.tree.leaves(Block(2.0))  # only x is a leaf
      [2.0]
    """
    metadata = {"static": True, **kwargs.pop("metadata", {})}
    return dataclasses.field(metadata=metadata, **kwargs)


def validate_fields(obj: Any) -> None:
    """Apply the :class:`Check` of every field of ``obj``, then each ``__check_init__`` of its classes.

    The generated ``__post_init__`` of a :func:`pytree_class` calls it, so it runs when a user builds an
    object (never when JAX rebuilds one). Each field's check may normalise the stored value (a dtype to
    ``np.dtype``, a plain schedule function wrapped static). Then every ``__check_init__`` (and an explicit
    ``__post_init__``) defined along the class hierarchy runs, base classes first: the place for cross-field
    rules.

    Args:
      obj: a dataclass instance whose fields carry checks (a gradtx transformation, schedule or wrapper).

    Raises:
      InvalidType: (a ``TypeError``) a field has the wrong kind of value.
      InvalidValue: (a ``ValueError``) a field's value is out of range, or a ``__check_init__`` refuses it.

    Example:
      >>> from typing import Any
      >>> from gradtx.fields import fail, pytree_class, real
      >>> @pytree_class
      ... class Interval:
      ...     lo: Any = real(default=0.0)
      ...     hi: Any = real(default=1.0)
      ...     def __check_init__(self):
      ...         if self.lo > self.hi:
      ...             fail("Interval", "hi", self.hi, f"must be >= lo ({self.lo})")
      >>> Interval(0.0, 2.0).hi
      2.0
      >>> try:
      ...     Interval(1.0, 0.5)
      ... except ValueError as e:
      ...     print(e)
      Interval(hi=0.5): hi must be >= lo (1.0)
    """
    call = type(obj).__name__
    for f in dataclasses.fields(obj):
        check = f.metadata.get("check")
        if check is None:
            continue
        value = getattr(obj, f.name)
        new = check(call, f.name, value)
        if new is not value:
            object.__setattr__(obj, f.name, new)
    for klass in reversed(type(obj).__mro__):
        for hook in ("__check_init__", "_own_post_init"):
            fn = klass.__dict__.get(hook)
            if fn is not None:
                fn(obj)


@overload
def recipe(fn: Callable[_P, _T], *, off_when_none: tuple[str, ...] = ()) -> Callable[_P, _T]: ...


@overload
def recipe(
    fn: None = None, *, off_when_none: tuple[str, ...] = ()
) -> Callable[[Callable[_P, _T]], Callable[_P, _T]]: ...


def recipe(fn: Callable[..., Any] | None = None, *, off_when_none: tuple[str, ...] = ()) -> Any:
    """Mark ``fn`` as a recipe (a named optimizer built from blocks): an invalid option refused by one of its
    blocks is reported under the recipe's name and argument (``adam(b1=1.2): b1 must be in [0, 1)`` rather
    than the block's ``scale_by_adam(b1=1.2)``), naming the block too when the argument's name differs.

    Args:
      fn: a function returning a transformation (``@recipe``), or ``None`` (``@recipe(off_when_none=...)``).
      off_when_none: the numeric arguments for which ``None`` is documented as valid and turns a part of the
        recipe off (``adafactor(clipping_threshold=None)``: no clipping).

    Returns:
      ``fn``, wrapped (``functools.wraps``: same name, signature and docstring); or, without ``fn``, a decorator.

    Raises:
      TypeError: ``off_when_none`` names an argument ``fn`` does not have: ``recipe(my_opt): off_when_none
        names no argument: ['y']``. The wrapped function re-raises its blocks' :class:`HyperparameterError`
        under its own name and argument.

    Example:
      >>> import gradtx
      >>> try:
      ...     gradtx.adam(1e-3, b1=1.2)
      ... except ValueError as e:
      ...     print(e)
      adam(b1=1.2): b1 must be in [0, 1)
    """
    if fn is None:
        return lambda f: recipe(f, off_when_none=off_when_none)

    import functools
    import inspect

    signature = inspect.signature(fn)
    unknown = [n for n in off_when_none if n not in signature.parameters]
    if unknown:
        raise TypeError(f"recipe({fn.__name__}): off_when_none names no argument: {unknown}")

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HyperparameterError as e:
            if e.call == fn.__name__:
                raise
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                raise e from None
            name = _argument_of(bound.arguments, e, signature)
            if name is None:
                raise
            text = str(e).split(": ", 1)[1]
            if name != e.name:
                text = f"{name} was given to {e.call} as {e.name}: {text}"
            new = type(e)(f"{fn.__name__}({name}={short_repr(e.value)}): {text}")
            new.call, new.name, new.value = fn.__name__, name, e.value
            raise new from None

    wrapped.__gradtx_recipe__ = True  # type: ignore[attr-defined]
    wrapped.__gradtx_off_when_none__ = tuple(off_when_none)  # type: ignore[attr-defined]
    return wrapped


def _argument_of(arguments: dict[str, Any], err: HyperparameterError, signature: Any) -> str | None:
    """The recipe argument the refused value came from: the same name first, else the same object."""
    if err.name in arguments and arguments[err.name] is err.value:
        return err.name
    for name, value in arguments.items():
        default = signature.parameters[name].default
        if value is err.value and value is not default:
            return name
    return None


# --------------------------------------------------------------------------------------------------
# Pytree classes.
# --------------------------------------------------------------------------------------------------


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, static_field, hyper, real,
                                                            non_negative, positive, probability, integer,
                                                            scalar_or_schedule, flag, dtype_option, state_dtype, option,
                                                            function, choice))
def pytree_class(cls: type[_T]) -> type[_T]:
    """Make ``cls`` a frozen dataclass registered as a pytree whose fields are validated when it is built.

    Fields are leaves unless static (:func:`static_field`, :func:`flag`, :func:`dtype_option`, ...). Building an
    object runs :func:`validate_fields`. Unflattening rebuilds the object field by field *without* the
    constructor, so validation runs once, when a user builds the object, never on trees JAX rebuilds (a
    gradient with respect to an optimizer, a tree of placeholders or ``ShapeDtypeStruct``). The dataclass is
    frozen, with ``eq=False`` (objects compare by identity) and no generated ``repr``. Type checkers see the
    fields as constructor arguments (``dataclass_transform``). The decorated class's annotated attributes
    become the fields.

    Returns:
      ``cls`` itself, made a frozen dataclass and registered with ``jax.tree_util`` (with keys: the leaves'
      paths are ``.name``).

    Example:
      >>> from typing import Any
      >>> import jax
      >>> from gradtx.fields import flag, positive, pytree_class
      >>> @pytree_class
      ... class Block:
      ...     lr: Any = positive(default=0.1)
      ...     nesterov: bool = flag(default=False)
      >>> b = Block(0.5, nesterov=True)
      >>> jax.tree.leaves(b), b.nesterov  # lr is a leaf, nesterov static
      ([0.5], True)
      >>> jax.tree.map(lambda x: 2 * x, b).lr  # rebuilt without the constructor
      1.0
    """
    own = cls.__dict__.get("__post_init__")
    if own is not None and own is not _post_init:
        cls._own_post_init = own  # type: ignore[attr-defined]  # an explicit __post_init__ runs as a check
    cls.__post_init__ = _post_init  # type: ignore[attr-defined]
    cls = dataclasses.dataclass(frozen=True, repr=False, eq=False)(cls)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    data = tuple(f.name for f in fields if not f.metadata.get("static", False))
    meta = tuple(f.name for f in fields if f.metadata.get("static", False))
    keys = tuple(jax.tree_util.GetAttrKey(n) for n in data)

    def flatten_with_keys(obj: Any) -> tuple[list[tuple[Any, Any]], tuple[Any, ...]]:
        return [(k, getattr(obj, n)) for k, n in zip(keys, data)], tuple(getattr(obj, n) for n in meta)

    def flatten(obj: Any) -> tuple[list[Any], tuple[Any, ...]]:
        return [getattr(obj, n) for n in data], tuple(getattr(obj, n) for n in meta)

    def unflatten(aux: tuple[Any, ...], children: Any) -> Any:
        obj = object.__new__(cls)
        for n, v in zip(data, children):
            object.__setattr__(obj, n, v)
        for n, v in zip(meta, aux):
            object.__setattr__(obj, n, v)
        return obj

    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)
    return cls


def _post_init(self: Any) -> None:
    validate_fields(self)


def fields_repr(obj: Any) -> str:
    """``name=value, ...`` for every field of ``obj`` shown in its repr (the body of every gradtx repr).

    Values are written by :func:`format_value`; fields declared with ``repr=False`` are left out, and the
    options declared by :func:`state_dtype` appear only when set.

    Args:
      obj: a dataclass instance (a gradtx transformation, schedule or wrapper).

    Returns:
      The comma-separated ``name=value`` pairs.

    Example:
      >>> import gradtx
      >>> from gradtx.fields import fields_repr
      >>> fields_repr(gradtx.trace(decay=0.5))
      'decay=0.5, nesterov=False, accumulator_dtype=None'
    """
    parts = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.repr or (f.metadata.get("show_when_set") and value is not None):
            parts.append(f"{f.name}={format_value(value)}")
    return ", ".join(parts)


class ValidationMixin:
    """Range checks for a class's own ``__check_init__`` (most options need none: declare them with a field).

    Every :class:`~gradtx.base.GradientTransformation` has it. Its private helpers raise the same errors as
    the declared fields, named after the class: ``self._fail(name, value, requirement)``,
    ``self._check_range(name, lo, hi, lo_open=, hi_open=)`` (a range that depends on another option),
    ``self._check_finite(name)`` and ``self._check_choice(name, choices)``.

    Example:
      >>> from typing import Any
      >>> from gradtx.fields import ValidationMixin, flag, pytree_class, real
      >>> @pytree_class
      ... class Block(ValidationMixin):
      ...     decay: Any = real(default=0.9)
      ...     bounded: bool = flag(default=True)
      ...     def __check_init__(self):
      ...         if self.bounded:
      ...             self._check_range("decay", 0.0, 1.0, hi_open=True)
      >>> Block(2.0, bounded=False).decay
      2.0
      >>> try:
      ...     Block(2.0)
      ... except ValueError as e:
      ...     print(e)
      Block(decay=2.0): decay must be in [0, 1)
    """

    def _fail(self, name: str, value: Any, requirement: str, kind: type[HyperparameterError] = InvalidValue) -> None:
        fail(type(self).__name__, name, value, requirement, kind)

    def _check_range(
        self,
        name: str,
        lo: float | None = None,
        hi: float | None = None,
        *,
        lo_open: bool = False,
        hi_open: bool = False,
    ) -> None:
        """Check ``getattr(self, name)`` as ``hyper(lo=..., hi=...)`` would (for conditional ranges)."""
        Check("number", lo, hi, lo_open, hi_open)(type(self).__name__, name, getattr(self, name))

    def _check_finite(self, name: str) -> None:
        self._check_range(name)

    def _check_choice(self, name: str, choices: tuple[Any, ...]) -> None:
        Check("choice", choices=tuple(choices))(type(self).__name__, name, getattr(self, name))
