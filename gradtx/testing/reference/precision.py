"""Float64 references for the precision policies (``gradtx.precision``) and the state dtypes of the Adam family.

NumPy only; same interface as ``gradtx.testing.reference`` (``u = ref.step(g, params=None)`` on float64
vectors). The rounding to a storage dtype is written out here, independently of JAX:

- ``round_to(x, 'float32')`` is NumPy's round-to-nearest-even cast;
- ``round_to(x, 'bfloat16')`` rounds to float32, then keeps the 8 high bits of the significand, ties to even
  (add ``0x7FFF`` plus the lowest kept bit to the float32 pattern and clear the 16 low bits);
- ``round_to(x, 'float16')`` is NumPy's float16 cast of the float64 value (correctly rounded, once: XLA
  (jax >= 0.10) converts float64 to float16 directly).

Going through float32 first is how XLA converts float64 to bfloat16 (twice rounded: ``1 + 2^-8 + 2^-30``
gives ``1.0``, not ``1 + 2^-7``); tests/test_precision.py checks that this still holds.
"""

import numpy as np

__all__ = ["kahan_summation", "round_to", "state_dtypes", "stochastic_rounding"]


def _vec(x):
    return np.array(x, dtype=np.float64, copy=True)


def round_to(x, dtype):
    """Rounds float64 values to a storage dtype the way XLA does, and returns them as float64.

    'float32': NumPy's round-to-nearest-even cast; 'bfloat16': to float32 first, then to the 8 high bits of the
    significand, ties to even (twice rounded, as XLA converts float64 to bfloat16); 'float16': NumPy's float16
    cast of the float64 value (once). Non-finite values stay as they are.

    Args:
      x: the values, an array-like (copied to float64).
      dtype: 'bfloat16', 'float16', 'float32' (a string or a NumPy dtype), or None / 'float64' to leave ``x``
        unchanged.

    Returns:
      A new float64 array of ``x``'s shape holding the rounded values.

    Raises:
      ValueError: ``round_to: unknown dtype ...`` for any other dtype.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> from gradtx.testing.reference import precision as rp
      >>> print(rp.round_to([0.1, 1.0 + 2**-8 + 2**-30], "bfloat16"))
      [0.10009766 1.        ]
      >>> print(rp.round_to([0.1, 1.0 + 2**-8 + 2**-30], "float16"))
      [0.09997559 1.00390625]
    """
    x = _vec(x)
    name = None if dtype is None else np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name in (None, "float64"):
        return x
    x32 = x.astype(np.float32)
    if name == "float32":
        return x32.astype(np.float64)
    if name == "float16":  # XLA (jax >= 0.10) rounds float64 to float16 directly, once
        return x.astype(np.float16).astype(np.float64)
    if name == "bfloat16":
        bits = np.atleast_1d(x32).view(np.uint32).astype(np.uint64)
        lsb = (bits >> 16) & 1
        rounded = ((bits + 0x7FFF + lsb) & 0xFFFF0000).astype(np.uint32)
        out = rounded.view(np.float32).astype(np.float64).reshape(np.shape(x32))
        return np.where(np.isfinite(x32), out, x32.astype(np.float64))
    raise ValueError(f"round_to: unknown dtype {dtype!r}")


class state_dtypes:
    """A reference whose state is stored in lower precision (gradtx's ``mu_dtype``, ``nu_dtype`` ... options).

    After every ``step`` of ``inner`` (which computes its output from the unrounded new state), each state
    attribute named in ``rounded`` is replaced by its :func:`round_to` the given dtype, as gradtx stores its
    state in that dtype. ``start`` gives state attributes a rounded initial value before the first step
    (Yogi's moments start at ``initial_accumulator_value``, stored rounded).

    Call ``step(g, params=None)`` once per update; it returns the inner reference's update.

    Args:
      inner: the reference whose state is rounded (e.g. ``reference.scale_by_adam()``).
      rounded: a mapping ``attribute name -> dtype`` (a dtype :func:`round_to` accepts), e.g. ``{"m":
        "bfloat16"}`` for Adam's first moment.
      start: None or a mapping ``attribute name -> initial value``, applied (rounded) to attributes that are
        still None before a step. Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> from gradtx.testing.reference import precision as rp
      >>> tx = rp.state_dtypes(ref.scale_by_adam(), {"m": "bfloat16"})
      >>> print(np.round(ref.run(tx, [[0.1, 1.0], [0.3, -1.0]]), 4))
      [[ 1.      1.    ]
       [ 0.918  -0.0522]]
      >>> print(tx.inner.m)
      [ 0.0390625 -0.0098877]
    """

    def __init__(self, inner, rounded, start=None):
        self.inner, self.rounded, self.start = inner, dict(rounded), dict(start or {})

    def step(self, g, params=None):
        g = _vec(g)
        for attr, value in self.start.items():
            if getattr(self.inner, attr) is None:
                setattr(self.inner, attr, round_to(np.full_like(g, value), self.rounded.get(attr)))
        u = self.inner.step(g, params)
        for attr, dtype in self.rounded.items():
            setattr(self.inner, attr, round_to(getattr(self.inner, attr), dtype))
        return u


class stochastic_rounding:
    """Float64 reference of :class:`gradtx.stochastic_rounding` for float32/float64 parameters: a pass-through.

    For float32 and float64 parameters (the references' dtypes) the wrapper passes ``inner``'s update through
    unchanged; its rounding of bfloat16 / float16 parameters is random and checked statistically in
    tests/test_precision.py instead.

    Call ``step(g, params=None)`` once per update; it returns the inner reference's update.

    Args:
      inner: the wrapped reference.
      key: ignored (gradtx's PRNG key or seed). Default 0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> from gradtx.testing.reference import precision as rp
      >>> tx = rp.stochastic_rounding(ref.sgd(0.1))
      >>> print(np.round(ref.run(tx, [[1.0, -2.0], [0.5, 3.0]]), 4))
      [[-0.1   0.2 ]
       [-0.05 -0.3 ]]
    """

    def __init__(self, inner, key=0):
        self.inner = inner

    def step(self, g, params=None):
        return self.inner.step(g, params)


class kahan_summation:
    """Float64 reference of :class:`gradtx.kahan_summation`: compensated updates.

    Kahan 1965, "Further remarks on reducing truncation errors", Communications of the ACM: with the inner
    update u and the compensation c (c_0 = 0)::

        y = u + c;   t = p + y;   update = t - p;   c = y - (t - p)

    so the parameters follow the exact running sum of the updates up to one rounding.

    Call ``step(g, params)`` once per update with the gradient and the parameters (float64 vectors; ``params``
    is required); it returns the compensated update as a new float64 array.

    Args:
      inner: the wrapped reference.
      compensation_dtype: ignored (the reference keeps c in float64). Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> from gradtx.testing.reference import precision as rp
      >>> tx = rp.kahan_summation(ref.identity())
      >>> p = np.array([1.0])
      >>> # 6e-17 is below half an ulp of 1.0: lost alone, kept by the compensation
      >>> print(tx.step([6e-17], p), tx.step([6e-17], p))
      [0.] [2.22044605e-16]
    """

    def __init__(self, inner, compensation_dtype=None):
        self.inner, self.c = inner, None

    def step(self, g, params=None):
        p = _vec(params)
        u = self.inner.step(g, params)
        y = u + (0.0 if self.c is None else self.c)
        d = (p + y) - p
        self.c = y - d
        return d
