"""Float64 references for the precision policies (``gradtx.precision``) and the state dtypes of the Adam family.

NumPy only; same interface as ``gradtx.testing.reference`` (``u = ref.step(g, params=None)`` on float64
vectors). The rounding to a storage dtype is written out here, independently of JAX:

- ``round_to(x, 'float32')`` is NumPy's round-to-nearest-even cast;
- ``round_to(x, 'bfloat16')`` rounds to float32, then keeps the 8 high bits of the significand, ties to even
  (add ``0x7FFF`` plus the lowest kept bit to the float32 pattern and clear the 16 low bits);
- ``round_to(x, 'float16')`` rounds to float32, then NumPy's float16 cast (correctly rounded).

Going through float32 first is how XLA converts float64 to a 16-bit float (twice rounded: ``1 + 2^-8 + 2^-30``
gives ``1.0``, not ``1 + 2^-7``); tests/test_precision.py checks that this still holds.
"""

import numpy as np

__all__ = ["kahan_summation", "round_to", "state_dtypes", "stochastic_rounding"]


def _vec(x):
    return np.array(x, dtype=np.float64, copy=True)


def round_to(x, dtype):
    """``x`` (float64) rounded to ``dtype`` ('bfloat16', 'float16', 'float32', or None / 'float64': unchanged),
    returned as float64."""
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
    """A reference block whose state is stored in lower precision: after every ``step`` of ``inner`` (which
    computes its output from the unrounded new state), each attribute named in ``rounded`` is replaced by
    its rounding to the given dtype. ``start`` gives state attributes a rounded initial value before the
    first step (Yogi's moments start at ``initial_accumulator_value``, stored rounded)."""

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
    """For float32 and float64 parameters (the references' dtypes) the wrapper passes ``inner``'s update
    through unchanged; its rounding of bfloat16 / float16 parameters is checked statistically in
    tests/test_precision.py."""

    def __init__(self, inner, key=0):
        self.inner = inner

    def step(self, g, params=None):
        return self.inner.step(g, params)


class kahan_summation:
    """Kahan (1965) compensated updates in float64: ``y = u + c``, ``t = p + y``, ``update = t - p``,
    ``c = y - (t - p)``; ``c_0 = 0``."""

    def __init__(self, inner, compensation_dtype=None):
        self.inner, self.c = inner, None

    def step(self, g, params=None):
        p = _vec(params)
        u = self.inner.step(g, params)
        y = u + (0.0 if self.c is None else self.c)
        d = (p + y) - p
        self.c = y - d
        return d
