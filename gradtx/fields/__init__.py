"""Declarative hyperparameter fields: how a transformation, schedule or wrapper states its options.

Every gradtx object with options is a frozen dataclass registered as a pytree (:func:`pytree_class`). Each
option is a field that says, once, what it accepts::

    @pytree_class
    class scale_by_adam(GradientTransformation):
        b1: Any = probability(0.9)              # a real number in [0, 1): a leaf
        eps: Any = non_negative(1e-8)           # a real number >= 0: a leaf
        nesterov: bool = flag(False)            # True or False: static
        mu_dtype: Any = state_dtype(default=None)           # None or a floating dtype: static, keyword-only

and one validator (:func:`validate_fields`, run by the generated ``__post_init__``) applies the declarations of
every field when a user builds the object. Cross-field rules go in a ``__check_init__(self)`` method (as in
Equinox), which runs after the fields are checked. A value is refused with a ``TypeError`` (wrong kind: None,
a string, a list, a dict, an array that is not 0-d, a complex number, a non-bool flag) or a ``ValueError`` (NaN,
infinite, outside the range) whose message names the call, the argument, the value and what is valid::

    scale_by_adam(b1=1.2): b1 must be a real number in [0, 1)

Numeric hyperparameters are pytree *leaves* (so a jitted step does not retrace when only a value changes and
``jax.grad`` reaches them); they accept a Python real number, a NumPy or JAX real scalar or 0-d array, and,
where declared (``schedule=True``: learning rates), a schedule ``count -> value``. A traced value (under
``jit``, ``vmap``, ``grad``) is checked for its kind and shape, and its range is left to the documented runtime
policy; so are JAX arrays inside :func:`run_time_values` (``inject_hyperparams`` rebuilds its inner
transformation from schedule values there). Flags, dtypes, callables and masks are *static* (part of the tree
definition): they must be hashable and compare by value, so equal objects give equal tree definitions.

Unflattening a tree rebuilds objects field by field without the constructor, so validation runs only when a
user builds an object, never on the trees JAX rebuilds.
"""

from gradtx.fields.checks import (
    Check,
    HyperparameterError,
    InvalidType,
    InvalidValue,
    concrete_number,
    fail,
    format_value,
    is_placeholder,
    run_time_values,
    short_repr,
)
from gradtx.fields.declare import (
    ValidationMixin,
    choice,
    dtype_option,
    fields_repr,
    flag,
    function,
    hyper,
    integer,
    non_negative,
    option,
    positive,
    probability,
    pytree_class,
    real,
    recipe,
    scalar_or_schedule,
    state_dtype,
    static_field,
    validate_fields,
)
from gradtx.fields.static import (
    FrozenTree,
    StaticCallable,
    as_pytree_callable,
    hashable_tree,
)

__all__ = [
    "Check",
    "FrozenTree",
    "HyperparameterError",
    "InvalidType",
    "InvalidValue",
    "StaticCallable",
    "ValidationMixin",
    "as_pytree_callable",
    "choice",
    "concrete_number",
    "dtype_option",
    "fail",
    "fields_repr",
    "flag",
    "format_value",
    "function",
    "hashable_tree",
    "hyper",
    "integer",
    "is_placeholder",
    "non_negative",
    "option",
    "positive",
    "probability",
    "pytree_class",
    "real",
    "recipe",
    "run_time_values",
    "scalar_or_schedule",
    "short_repr",
    "state_dtype",
    "static_field",
    "validate_fields",
]
