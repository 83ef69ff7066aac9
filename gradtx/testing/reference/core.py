"""The foundation's float64 references: the blocks and the named optimizers of ``gradtx`` (and ``run``).

Part of :mod:`gradtx.testing.reference` (its docstring gives the interface and conventions); reach these
through the package, ``from gradtx.testing import reference as ref; ref.adam(...)``. NumPy and ``math`` only.
The named optimizers (sgd, adagrad, rmsprop, adam, adamw, nadam, nadamw) are written monolithically from their
papers, not by composing the blocks below, so that gradtx's compositions are checked independently.
"""

import math

import numpy as np

__all__ = [
    "run", "identity", "set_to_zero", "chain", "scale", "scale_by_learning_rate", "scale_by_schedule", "trace",
    "ema", "bias_correction", "scale_by_rms", "scale_by_rss", "scale_by_stddev", "scale_by_adam", "scale_by_sign",
    "clip", "clip_by_global_norm", "add_decayed_weights", "sgd", "adagrad", "rmsprop", "adam", "nadam", "adamw",
    "nadamw",
]


def _vec(x):
    """A float64 copy of ``x`` (never a view of the caller's array)."""
    return np.array(x, dtype=np.float64, copy=True)


def _value(v, count):
    """A float or a callable count -> float, evaluated at the 0-based ``count``."""
    return float(v(count)) if callable(v) else float(v)  # type: ignore[arg-type]


def run(ref, grads, params=None):
    """Feeds a stream of gradients to a reference and stacks the updates it returns.

    The reference's ``step`` is called once per row: u_t = ref.step(grads[t], params_t), t = 0, 1, ...,
    with params_t = None, the fixed vector ``params``, or the row ``params[t]``.

    Args:
      ref: a reference object of this package (anything with ``step(g, params=None)``); it is stepped in
        place, so its state advances by ``len(grads)`` updates.
      grads: the gradients, an array-like [steps, n] (row t the gradient of step t), copied to float64.
      params: None (default), one parameter vector [n] used at every step, or per-step parameters
        [steps, n].

    Returns:
      A float64 array [steps, n] whose row t is the update of step t (an array of zeros shaped like
      ``grads`` when it has no rows).

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> out = ref.run(ref.scale(0.5), [[1.0, -2.0], [4.0, 0.0]])
      >>> print(np.round(out, 4))
      [[ 0.5 -1. ]
       [ 2.   0. ]]
    """
    grads = _vec(grads)
    if params is not None:
        params = _vec(params)
    out = []
    for t in range(grads.shape[0]):
        p = params if params is None or params.ndim == 1 else params[t]
        out.append(ref.step(grads[t], p))
    return np.stack(out) if out else np.zeros_like(grads)


# ----------------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------------


class identity:
    """Float64 reference of :class:`gradtx.identity`: the update is the gradient, u = g.

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.identity(), [[1.0, -2.0], [0.5, 3.0]]), 4))
      [[ 1.  -2. ]
       [ 0.5  3. ]]
    """

    def step(self, g, params=None):
        return _vec(g)


class set_to_zero:
    """Float64 reference of :class:`gradtx.set_to_zero`: the update is zero, u = 0.

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.set_to_zero(), [[1.0, -2.0], [0.5, 3.0]]), 4))
      [[0. 0.]
       [0. 0.]]
    """

    def step(self, g, params=None):
        return np.zeros_like(_vec(g))


class chain:
    """Float64 reference of :class:`gradtx.chain`: applies references one after the other.

    u = f_n(... f_2(f_1(g))): each reference's ``step`` gets the previous one's output and the same ``params``.
    ``step(g, params=None)`` returns the last output as a new float64 array.

    Args:
      *refs: the references to apply, in order (objects with ``step(g, params=None)``); none gives u = g.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.chain(ref.clip(1.0), ref.scale(-0.1))
      >>> print(np.round(ref.run(tx, [[3.0, -0.5], [0.2, -4.0]]), 4))
      [[-0.1   0.05]
       [-0.02  0.1 ]]
    """

    def __init__(self, *refs):
        self.refs = refs

    def step(self, g, params=None):
        u = _vec(g)
        for r in self.refs:
            u = r.step(u, params)
        return u


class scale:
    """Float64 reference of :class:`gradtx.scale`: multiplies the gradient by a constant, u = step_size g.

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      step_size: the factor, a float (any sign).

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.scale(-0.5), [[1.0, -2.0], [4.0, 2.0]]), 4))
      [[-0.5  1. ]
       [-2.  -1. ]]
    """

    def __init__(self, step_size):
        self.step_size = float(step_size)

    def step(self, g, params=None):
        return self.step_size * _vec(g)


class scale_by_learning_rate:
    """Float64 reference of :class:`gradtx.scale_by_learning_rate`: u = -lr_t g.

    u = -lr_t g with ``flip_sign`` (gradient descent), u = lr_t g without; lr_t = learning_rate(k - 1) for a
    callable (k the 1-based step), else the constant.

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      flip_sign: whether to negate the update (keyword-only). Default True.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.scale_by_learning_rate(lambda count: 0.1 * (count + 1))
      >>> print(np.round(ref.run(tx, [[1.0, -2.0], [1.0, -2.0]]), 4))
      [[-0.1  0.2]
       [-0.2  0.4]]
    """

    def __init__(self, learning_rate, *, flip_sign=True):
        self.lr, self.sign, self.count = learning_rate, (-1.0 if flip_sign else 1.0), 0

    def step(self, g, params=None):
        u = self.sign * _value(self.lr, self.count) * _vec(g)
        self.count += 1
        return u


class scale_by_schedule:
    """Float64 reference of :class:`gradtx.scale_by_schedule`: u = step_size_fn(k - 1) g.

    The schedule is evaluated at the 0-based count of previous updates (k - 1 on the 1-based step k).

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      step_size_fn: a callable ``count -> float`` (e.g. a schedule of this package).

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.scale_by_schedule(ref.linear_schedule(1.0, 0.0, 4))
      >>> print(np.round(ref.run(tx, [[1.0, -2.0], [1.0, -2.0], [1.0, -2.0]]), 4))
      [[ 1.   -2.  ]
       [ 0.75 -1.5 ]
       [ 0.5  -1.  ]]
    """

    def __init__(self, step_size_fn):
        self.fn, self.count = step_size_fn, 0

    def step(self, g, params=None):
        u = float(self.fn(self.count)) * _vec(g)
        self.count += 1
        return u


class trace:
    """Float64 reference of :class:`gradtx.trace`: heavy-ball momentum (Polyak 1964), optionally Nesterov's.

    Polyak 1964, "Some methods of speeding up the convergence of iteration methods"; Nesterov's form as in
    Sutskever, Martens, Dahl & Hinton 2013, "On the importance of initialization and momentum in deep learning",
    ICML::

        t_k = g + decay t_{k-1},  t_0 = 0
        u = t_k                 (nesterov: u = g + decay t_k)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      decay: the momentum coefficient, in [0, 1).
      nesterov: whether to use Nesterov's look-ahead form. Default False.
      accumulator_dtype: ignored (the reference computes in float64). Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.trace(0.5), [[1.0, -2.0], [1.0, 2.0], [0.0, 0.0]]), 4))
      [[ 1.   -2.  ]
       [ 1.5   1.  ]
       [ 0.75  0.5 ]]
    """

    def __init__(self, decay, nesterov=False, accumulator_dtype=None):
        self.decay, self.nesterov, self.t = float(decay), nesterov, None

    def step(self, g, params=None):
        g = _vec(g)
        t_prev = np.zeros_like(g) if self.t is None else self.t
        self.t = g + self.decay * t_prev
        return g + self.decay * self.t if self.nesterov else self.t.copy()


class ema:
    """Float64 reference of :class:`gradtx.ema`: an exponential moving average of the gradients.

    ::

        e_k = (1 - decay) g + decay e_{k-1},  e_0 = 0
        u = e_k / (1 - decay**k)   (debias, the bias correction of Kingma & Ba 2015)   else u = e_k

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      decay: the decay of the average, in [0, 1).
      debias: whether to divide by 1 - decay**k. Default True.
      accumulator_dtype: ignored (the reference computes in float64). Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.ema(0.5), [[2.0, -2.0], [4.0, 2.0]]), 4))
      [[ 2.     -2.    ]
       [ 3.3333  0.6667]]
    """

    def __init__(self, decay, debias=True, accumulator_dtype=None):
        self.decay, self.debias, self.e, self.k = float(decay), debias, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        self.k += 1
        e_prev = np.zeros_like(g) if self.e is None else self.e
        self.e = (1.0 - self.decay) * g + self.decay * e_prev
        return self.e / (1.0 - self.decay**self.k) if self.debias else self.e.copy()


class bias_correction:
    """Float64 reference of :class:`gradtx.bias_correction`: u = g / (1 - decay**k).

    The bias correction of Kingma & Ba 2015 (Adam, Algorithm 1) on its own; k is the 1-based step.

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      decay: the decay whose bias is corrected, in [0, 1).

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.bias_correction(0.5), [[1.0, -2.0], [1.0, -2.0]]), 4))
      [[ 2.     -4.    ]
       [ 1.3333 -2.6667]]
    """

    def __init__(self, decay):
        self.decay, self.k = float(decay), 0

    def step(self, g, params=None):
        self.k += 1
        return _vec(g) / (1.0 - self.decay**self.k)


class scale_by_rms:
    """Float64 reference of :class:`gradtx.scale_by_rms`: divides by the root mean square of past gradients.

    RMSProp's scaling (Tieleman & Hinton 2012, Lecture 6e, "rmsprop: divide the gradient by a running average of
    its recent magnitude")::

        decay a float:  nu_k = decay nu_{k-1} + (1 - decay) g^2,  nu_0 = initial_scale
                        (init_from_first: nu_1 = g_1^2 exactly, the average afterwards)
                        nu_hat = nu_k / (1 - decay**k) if bias_correction else nu_k
        decay None:     nu_hat = (1/k) sum_{j<=k} g_j^2   (equal weights)
        u = g / sqrt(nu_hat + eps)   if eps_in_sqrt   else   g / (sqrt(nu_hat) + eps)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      decay: the decay of the average of g^2, in [0, 1), or None for the plain mean. Default 0.9.
      eps: added to the mean square (or to its root), >= 0. Default 1e-8.
      initial_scale: nu_0, >= 0; must be 0 with ``decay=None``. Default 0.0.
      eps_in_sqrt: whether eps goes inside the square root. Default True.
      bias_correction: whether to divide nu_k by 1 - decay**k (needs a float decay and no
        init_from_first). Default False.
      init_from_first: whether nu_1 is g_1^2 instead of the average with nu_0 (keyword-only). Default False.

    Raises:
      ValueError: ``bias_correction needs a float decay and init_from_first=False`` or ``initial_scale must
        be 0 with decay=None``, for those combinations.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.scale_by_rms(decay=0.5, eps=0.0)
      >>> print(np.round(ref.run(tx, [[1.0, -2.0], [1.0, 2.0]]), 4))
      [[ 1.4142 -1.4142]
       [ 1.1547  1.1547]]
    """

    def __init__(
        self,
        decay=0.9,
        eps=1e-8,
        initial_scale=0.0,
        eps_in_sqrt=True,
        bias_correction=False,
        *,
        init_from_first=False,
    ):
        if bias_correction and (decay is None or init_from_first):
            raise ValueError("bias_correction needs a float decay and init_from_first=False")
        if decay is None and initial_scale != 0:
            raise ValueError("initial_scale must be 0 with decay=None")
        self.decay, self.eps, self.initial_scale = decay, float(eps), float(initial_scale)
        self.eps_in_sqrt, self.bias_correction = eps_in_sqrt, bias_correction
        self.init_from_first = init_from_first
        self.nu, self.sum_sq, self.k = None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        self.k += 1
        if self.decay is None:
            self.sum_sq = g * g if self.sum_sq is None else self.sum_sq + g * g
            nu_hat = self.sum_sq / self.k
        else:
            if self.k == 1 and self.init_from_first:
                self.nu = g * g
            else:
                nu_prev = np.full_like(g, self.initial_scale) if self.nu is None else self.nu
                self.nu = self.decay * nu_prev + (1.0 - self.decay) * g * g
            nu_hat = self.nu / (1.0 - self.decay**self.k) if self.bias_correction else self.nu
        if self.eps_in_sqrt:
            return g / np.sqrt(nu_hat + self.eps)
        return g / (np.sqrt(nu_hat) + self.eps)


class scale_by_rss:
    """Float64 reference of :class:`gradtx.scale_by_rss`: Adagrad's scaling by the root sum of squares.

    Duchi, Hazan & Singer 2011, "Adaptive Subgradient Methods for Online Learning and Stochastic Optimization",
    JMLR (diagonal version)::

        s_k = s_{k-1} + g^2,  s_0 = initial_accumulator_value
        u = g / sqrt(s_k + eps)   where s_k > 0,   u = 0 where s_k = 0

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      initial_accumulator_value: s_0, >= 0. Default 0.1.
      eps: added under the square root, >= 0. Default 1e-7.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.scale_by_rss(initial_accumulator_value=0.0, eps=0.0)
      >>> print(np.round(ref.run(tx, [[3.0, 0.0], [4.0, 2.0]]), 4))
      [[1.  0. ]
       [0.8 1. ]]
    """

    def __init__(self, initial_accumulator_value=0.1, eps=1e-7):
        self.s0, self.eps, self.s = float(initial_accumulator_value), float(eps), None

    def step(self, g, params=None):
        g = _vec(g)
        s_prev = np.full_like(g, self.s0) if self.s is None else self.s
        self.s = s_prev + g * g
        positive = self.s > 0
        denom = np.sqrt(np.where(positive, self.s, 1.0) + self.eps)
        return np.where(positive, g / denom, 0.0)


class scale_by_stddev:
    """Float64 reference of :class:`gradtx.scale_by_stddev`: divides by the running standard deviation.

    The centered RMSProp of Graves 2013, "Generating Sequences With Recurrent Neural Networks", arXiv 1308.0850,
    eqs. 38-41::

        mu_k = decay mu_{k-1} + (1 - decay) g,     mu_0 = 0
        nu_k = decay nu_{k-1} + (1 - decay) g^2,   nu_0 = initial_scale
        hats: divided by (1 - decay**k) if bias_correction
        u = g / sqrt(nu_hat - mu_hat^2 + eps)   if eps_in_sqrt   else   g / (sqrt(nu_hat - mu_hat^2) + eps)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      decay: the decay of both averages, in [0, 1). Default 0.9.
      eps: added to the variance (or to its root), >= 0. Default 1e-8.
      initial_scale: nu_0, >= 0. Default 0.0.
      eps_in_sqrt: whether eps goes inside the square root. Default True.
      bias_correction: whether to divide both averages by 1 - decay**k. Default False.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.scale_by_stddev(decay=0.5, eps=0.0, initial_scale=1.0)
      >>> print(np.round(ref.run(tx, [[1.0, -2.0], [1.0, 2.0]]), 4))
      [[ 1.1547 -1.633 ]
       [ 1.5119  1.1547]]
    """

    def __init__(self, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True, bias_correction=False):
        self.decay, self.eps, self.initial_scale = float(decay), float(eps), float(initial_scale)
        self.eps_in_sqrt, self.bias_correction = eps_in_sqrt, bias_correction
        self.mu, self.nu, self.k = None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        self.k += 1
        d = self.decay
        mu_prev = np.zeros_like(g) if self.mu is None else self.mu
        nu_prev = np.full_like(g, self.initial_scale) if self.nu is None else self.nu
        self.mu = d * mu_prev + (1.0 - d) * g
        self.nu = d * nu_prev + (1.0 - d) * g * g
        c = (1.0 - d**self.k) if self.bias_correction else 1.0
        var = self.nu / c - (self.mu / c) ** 2
        if self.eps_in_sqrt:
            return g / np.sqrt(var + self.eps)
        return g / (np.sqrt(var) + self.eps)


class scale_by_adam:
    """Float64 reference of :class:`gradtx.scale_by_adam`: Adam's direction, without the learning rate.

    Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", ICLR, Algorithm 1; the Nesterov form from
    Dozat 2016, "Incorporating Nesterov Momentum into Adam", ICLR workshop (as Optax writes it)::

        m_k = b1 m_{k-1} + (1 - b1) g;   v_k = b2 v_{k-1} + (1 - b2) g^2;   m_0 = v_0 = 0
        m_hat = m_k / (1 - b1**k)   (nesterov: b1 m_k / (1 - b1**(k+1)) + (1 - b1) g / (1 - b1**k))
        v_hat = v_k / (1 - b2**k);   u = m_hat / (sqrt(v_hat + eps_root) + eps)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the root of v_hat, >= 0. Default 1e-8.
      eps_root: added to v_hat under the root, >= 0. Default 0.0.
      mu_dtype: ignored (the reference computes in float64). Default None.
      nesterov: whether to use the Nesterov (NAdam) form of m_hat (keyword-only). Default False.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.scale_by_adam(), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[ 1.     -1.    ]
       [ 0.9322  0.0526]]
    """

    def __init__(self, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *, nesterov=False):
        self.b1, self.b2, self.eps, self.eps_root = float(b1), float(b2), float(eps), float(eps_root)
        self.nesterov, self.m, self.v, self.k = nesterov, None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        b1, b2 = self.b1, self.b2
        self.k += 1
        k = self.k
        self.m = (1.0 - b1) * g + (0.0 if self.m is None else b1 * self.m)
        self.v = (1.0 - b2) * g * g + (0.0 if self.v is None else b2 * self.v)
        if self.nesterov:
            m_hat = b1 * self.m / (1.0 - b1 ** (k + 1)) + (1.0 - b1) * g / (1.0 - b1**k)
        else:
            m_hat = self.m / (1.0 - b1**k)
        v_hat = self.v / (1.0 - b2**k)
        return m_hat / (np.sqrt(v_hat + self.eps_root) + self.eps)


class scale_by_sign:
    """Float64 reference of :class:`gradtx.scale_by_sign`: u = sign(g) (0 where g = 0).

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.scale_by_sign(), [[3.0, -0.5, 0.0], [-2.0, 1.0, 4.0]]), 4))
      [[ 1. -1.  0.]
       [-1.  1.  1.]]
    """

    def step(self, g, params=None):
        return np.sign(_vec(g))


class clip:
    """Float64 reference of :class:`gradtx.clip`: clips each coordinate, u = clip(g, -max_delta, max_delta).

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      max_delta: the largest magnitude of a coordinate, >= 0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.clip(1.0), [[3.0, -0.5], [-2.0, 1.0]]), 4))
      [[ 1.  -0.5]
       [-1.   1. ]]
    """

    def __init__(self, max_delta):
        self.max_delta = float(max_delta)

    def step(self, g, params=None):
        return np.clip(_vec(g), -self.max_delta, self.max_delta)


class clip_by_global_norm:
    """Float64 reference of :class:`gradtx.clip_by_global_norm`: rescales the whole gradient to a norm cap.

    Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent neural networks", ICML::

        n = ||g||_2 over the whole vector;   u = g if n < max_norm else g max_norm / n

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      max_norm: the largest global norm, > 0.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.clip_by_global_norm(1.0), [[3.0, 4.0], [0.3, 0.4]]), 4))
      [[0.6 0.8]
       [0.3 0.4]]
    """

    def __init__(self, max_norm):
        self.max_norm = float(max_norm)

    def step(self, g, params=None):
        g = _vec(g)
        n = math.sqrt(float(np.sum(g * g)))
        return g if n < self.max_norm else g * (self.max_norm / n)


class add_decayed_weights:
    """Float64 reference of :class:`gradtx.add_decayed_weights`: u = g + weight_decay p.

    u = g + weight_decay p where ``mask`` is True (everywhere when it is None); u = g elsewhere.

    Call ``step(g, params)`` once per update with the gradient ``g`` and the parameters ``params`` (1-D
    float64 vectors, the whole pytree raveled); it returns the update as a new float64 array and keeps the state
    inside the object.

    Args:
      weight_decay: the coefficient of the parameters (float). Default 0.0.
      mask: None (decay everywhere) or a boolean vector as long as the raveled parameters, True where the
        decay applies. Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> tx = ref.add_decayed_weights(0.1, mask=[True, False])
      >>> print(np.round(ref.run(tx, [[1.0, 1.0], [0.0, 2.0]], params=[10.0, 20.0]), 4))
      [[2. 1.]
       [1. 2.]]
    """

    def __init__(self, weight_decay=0.0, mask=None):
        self.wd = float(weight_decay)
        self.mask = None if mask is None else np.array(mask, dtype=bool, copy=True)

    def step(self, g, params=None):
        g, p = _vec(g), _vec(params)
        decay = self.wd * p
        if self.mask is not None:
            decay = np.where(self.mask, decay, 0.0)
        return g + decay


# ----------------------------------------------------------------------------------------------------
# Optimizers (monolithic; u is what gets added to the params)
# ----------------------------------------------------------------------------------------------------


class sgd:
    """Float64 reference of :func:`gradtx.sgd`: gradient descent with optional heavy-ball or Nesterov momentum.

    Polyak 1964 (heavy ball); Sutskever, Martens, Dahl & Hinton 2013, "On the importance of initialization and
    momentum in deep learning", ICML (Nesterov). Written monolithically, not from the blocks::

        momentum None:  u = -lr_t g
        else:           b_k = g + momentum b_{k-1},  b_0 = 0;   d = b_k  (nesterov: d = g + momentum b_k);
                        u = -lr_t d

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      momentum: the momentum coefficient in [0, 1), or None for none. Default None.
      nesterov: whether to use Nesterov's form. Default False.
      accumulator_dtype: ignored (the reference computes in float64). Default None.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> opt = ref.sgd(0.1, momentum=0.5)
      >>> print(np.round(ref.run(opt, [[1.0, -2.0], [1.0, -2.0], [1.0, -2.0]]), 4))
      [[-0.1    0.2  ]
       [-0.15   0.3  ]
       [-0.175  0.35 ]]
    """

    def __init__(self, learning_rate, momentum=None, nesterov=False, accumulator_dtype=None):
        self.lr, self.momentum, self.nesterov = learning_rate, momentum, nesterov
        self.buf, self.count = None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr = _value(self.lr, self.count)
        self.count += 1
        if self.momentum is None:
            return -lr * g
        mom = float(self.momentum)
        self.buf = g if self.buf is None else g + mom * self.buf
        d = g + mom * self.buf if self.nesterov else self.buf
        return -lr * d


class adagrad:
    """Float64 reference of :func:`gradtx.adagrad`: Adagrad, written monolithically.

    Duchi, Hazan & Singer 2011, "Adaptive Subgradient Methods for Online Learning and Stochastic Optimization",
    JMLR (diagonal version)::

        G_k = G_{k-1} + g^2,  G_0 = initial_accumulator_value
        u = -lr_t g / sqrt(G_k + eps)   (u = 0 where G_k = 0)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      initial_accumulator_value: G_0, >= 0. Default 0.1.
      eps: added under the square root, >= 0. Default 1e-7.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> opt = ref.adagrad(1.0, initial_accumulator_value=0.0, eps=0.0)
      >>> print(np.round(ref.run(opt, [[3.0, 0.0], [4.0, 2.0]]), 4))
      [[-1.   0. ]
       [-0.8 -1. ]]
    """

    def __init__(self, learning_rate, initial_accumulator_value=0.1, eps=1e-7):
        self.lr, self.G0, self.eps = learning_rate, float(initial_accumulator_value), float(eps)
        self.G, self.count = None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr = _value(self.lr, self.count)
        self.count += 1
        self.G = (np.full_like(g, self.G0) if self.G is None else self.G) + g * g
        u = np.zeros_like(g)
        pos = self.G > 0
        u[pos] = -lr * g[pos] / np.sqrt(self.G[pos] + self.eps)
        return u


class rmsprop:
    """Float64 reference of :func:`gradtx.rmsprop`: RMSProp, plain or centered, with optional momentum.

    Tieleman & Hinton 2012, Lecture 6e, "rmsprop: divide the gradient by a running average of its recent
    magnitude"; the centered variant from Graves 2013, arXiv 1308.0850, eqs. 38-41. Written monolithically::

        nu_k = decay nu_{k-1} + (1 - decay) g^2,  nu_0 = initial_scale   (init_from_first: nu_1 = g_1^2);
               decay None: nu_k = (1/k) sum_{j<=k} g_j^2
        centered: mu_k = decay mu_{k-1} + (1 - decay) g, mu_0 = 0;  var = nu_hat - mu_hat^2  (else var = nu_hat),
                  the hats divided by (1 - decay**k) if bias_correction
        d = g / sqrt(var + eps)  if eps_in_sqrt  else  g / (sqrt(var) + eps);   x = -lr_t d
        momentum: t_k = x + momentum t_{k-1}, t_0 = 0;  u = t_k  (nesterov: u = x + momentum t_k);  else u = x

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      decay: the decay of the averages, in [0, 1), or None for the plain mean of g^2. Default 0.9.
      eps: added to the variance (or to its root), >= 0. Default 1e-8.
      initial_scale: nu_0, >= 0; must be 0 with ``decay=None``. Default 0.0.
      eps_in_sqrt: whether eps goes inside the square root. Default True.
      centered: whether to subtract the squared mean of g (Graves 2013). Default False.
      momentum: the momentum coefficient in [0, 1), or None for none. Default None.
      nesterov: whether to use Nesterov's form of the momentum. Default False.
      bias_correction: whether to divide the averages by 1 - decay**k. Default False.
      init_from_first: whether nu_1 is g_1^2 (keyword-only). Default False.

    Raises:
      ValueError: ``decay=None is incompatible with centered, bias_correction and initial_scale`` or
        ``init_from_first is incompatible with centered and bias_correction``, for those combinations.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> opt = ref.rmsprop(0.1, decay=0.5, eps=0.0)
      >>> print(np.round(ref.run(opt, [[1.0, -2.0], [1.0, 2.0]]), 4))
      [[-0.1414  0.1414]
       [-0.1155 -0.1155]]
    """

    def __init__(
        self,
        learning_rate,
        decay=0.9,
        eps=1e-8,
        initial_scale=0.0,
        eps_in_sqrt=True,
        centered=False,
        momentum=None,
        nesterov=False,
        bias_correction=False,
        *,
        init_from_first=False,
    ):
        if decay is None and (centered or bias_correction or initial_scale != 0):
            raise ValueError("decay=None is incompatible with centered, bias_correction and initial_scale")
        if init_from_first and (centered or bias_correction):
            raise ValueError("init_from_first is incompatible with centered and bias_correction")
        self.lr, self.decay, self.eps, self.nu0 = learning_rate, decay, float(eps), float(initial_scale)
        self.eps_in_sqrt, self.centered, self.bias_correction = eps_in_sqrt, centered, bias_correction
        self.momentum, self.nesterov, self.init_from_first = momentum, nesterov, init_from_first
        self.nu, self.mu, self.t, self.k = None, None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr = _value(self.lr, self.k)
        self.k += 1
        k, rho = self.k, self.decay
        if rho is None:
            self.nu = g * g if self.nu is None else self.nu + g * g  # running sum of squares
            var = self.nu / k
        else:
            if k == 1 and self.init_from_first:
                self.nu = g * g
            else:
                nu_prev = np.full_like(g, self.nu0) if self.nu is None else self.nu
                self.nu = rho * nu_prev + (1.0 - rho) * g * g
            c = (1.0 - rho**k) if self.bias_correction else 1.0
            var = self.nu / c
            if self.centered:
                self.mu = (1.0 - rho) * g + (0.0 if self.mu is None else rho * self.mu)
                var = var - (self.mu / c) ** 2
        d = g / np.sqrt(var + self.eps) if self.eps_in_sqrt else g / (np.sqrt(var) + self.eps)
        x = -lr * d
        if self.momentum is None:
            return x
        mom = float(self.momentum)
        self.t = x if self.t is None else x + mom * self.t
        return x + mom * self.t if self.nesterov else self.t.copy()


class adam:
    """Float64 reference of :func:`gradtx.adam`: Adam, written monolithically from the paper.

    Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", ICLR, Algorithm 1; with ``nesterov``, NAdam
    (Dozat 2016, "Incorporating Nesterov Momentum into Adam", ICLR workshop) in the Optax form, without the
    paper's extra b2 factor::

        m_k = b1 m_{k-1} + (1 - b1) g;   v_k = b2 v_{k-1} + (1 - b2) g^2;   m_0 = v_0 = 0
        m_hat = m_k / (1 - b1**k)   (nesterov: b1 m_k / (1 - b1**(k+1)) + (1 - b1) g / (1 - b1**k))
        v_hat = v_k / (1 - b2**k);   u = -lr_t m_hat / (sqrt(v_hat + eps_root) + eps)

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the root of v_hat, >= 0. Default 1e-8.
      eps_root: added to v_hat under the root, >= 0. Default 0.0.
      mu_dtype: ignored (the reference computes in float64). Default None.
      nesterov: whether to use NAdam's m_hat (keyword-only). Default False.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.adam(0.1), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[-0.1     0.1   ]
       [-0.0932 -0.0053]]
    """

    def __init__(
        self, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *, nesterov=False
    ):
        self.lr, self.b1, self.b2 = learning_rate, float(b1), float(b2)
        self.eps, self.eps_root, self.nesterov = float(eps), float(eps_root), nesterov
        self.m, self.v, self.k = None, None, 0

    def step(self, g, params=None):
        g = _vec(g)
        lr = _value(self.lr, self.k)
        self.k += 1
        k, b1, b2 = self.k, self.b1, self.b2
        m_prev = np.zeros_like(g) if self.m is None else self.m
        v_prev = np.zeros_like(g) if self.v is None else self.v
        self.m = b1 * m_prev + (1.0 - b1) * g
        self.v = b2 * v_prev + (1.0 - b2) * g**2
        if self.nesterov:
            m_hat = b1 * self.m / (1.0 - b1 ** (k + 1)) + (1.0 - b1) * g / (1.0 - b1**k)
        else:
            m_hat = self.m / (1.0 - b1**k)
        v_hat = self.v / (1.0 - b2**k)
        return -lr * m_hat / (np.sqrt(v_hat + self.eps_root) + self.eps)


class nadam(adam):
    """Float64 reference of :func:`gradtx.nadam`: NAdam, i.e. :class:`adam` with ``nesterov=True``.

    Dozat 2016, "Incorporating Nesterov Momentum into Adam", ICLR workshop, in the Optax form::

        m_hat = b1 m_k / (1 - b1**(k+1)) + (1 - b1) g / (1 - b1**k);   u = -lr_t m_hat / (sqrt(v_hat + eps_root) + eps)

    with m_k, v_k and v_hat as in Adam.

    Call ``step(g, params=None)`` once per update with the gradient ``g`` (a 1-D float64 vector, the whole
    pytree raveled); it returns the update as a new float64 array and keeps the state inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the root of v_hat, >= 0. Default 1e-8.
      eps_root: added to v_hat under the root, >= 0. Default 0.0.
      mu_dtype: ignored (the reference computes in float64). Default None.
      nesterov: whether to use the Nesterov form (keyword-only; False gives Adam). Default True.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> print(np.round(ref.run(ref.nadam(0.1), [[1.0, -2.0], [0.5, 2.0]]), 4))
      [[-0.1474  0.1474]
       [-0.0921 -0.056 ]]
    """

    def __init__(
        self, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *, nesterov=True
    ):
        super().__init__(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov)


class adamw:
    """Float64 reference of :func:`gradtx.adamw`: Adam with decoupled weight decay.

    Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization", ICLR, Algorithm 2, with the Optax
    convention that the decay is scaled by the learning rate::

        m, v, m_hat, v_hat as in Adam (nesterov: NAdam's m_hat)
        u = -lr_t (m_hat / (sqrt(v_hat + eps_root) + eps) + weight_decay p)   (no decay term where mask is False)

    Call ``step(g, params)`` once per update with the gradient ``g`` and the parameters ``params`` (1-D
    float64 vectors, the whole pytree raveled); it returns the update as a new float64 array and keeps the state
    inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the root of v_hat, >= 0. Default 1e-8.
      eps_root: added to v_hat under the root, >= 0. Default 0.0.
      mu_dtype: ignored (the reference computes in float64). Default None.
      weight_decay: the decay coefficient (a float), >= 0. Default 1e-4.
      mask: None (decay everywhere) or a boolean vector as long as the raveled parameters, True where the
        decay applies. Default None.
      nesterov: whether to use NAdam's m_hat (keyword-only). Default False.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> opt = ref.adamw(0.1, weight_decay=0.5)
      >>> print(np.round(ref.run(opt, [[1.0, -2.0], [0.5, 2.0]], params=[1.0, 4.0]), 4))
      [[-0.15   -0.1   ]
       [-0.1432 -0.2053]]
    """

    def __init__(
        self,
        learning_rate,
        b1=0.9,
        b2=0.999,
        eps=1e-8,
        eps_root=0.0,
        mu_dtype=None,
        weight_decay=1e-4,
        mask=None,
        *,
        nesterov=False,
    ):
        self.lr, self.b1, self.b2 = learning_rate, float(b1), float(b2)
        self.eps, self.eps_root, self.nesterov = float(eps), float(eps_root), nesterov
        self.wd = float(weight_decay)
        self.mask = None if mask is None else np.array(mask, dtype=bool, copy=True)
        self.m, self.v, self.k = None, None, 0

    def step(self, g, params=None):
        g, p = _vec(g), _vec(params)
        lr = _value(self.lr, self.k)
        self.k += 1
        k, b1, b2 = self.k, self.b1, self.b2
        m_prev = np.zeros_like(g) if self.m is None else self.m
        v_prev = np.zeros_like(g) if self.v is None else self.v
        self.m = b1 * m_prev + (1.0 - b1) * g
        self.v = b2 * v_prev + (1.0 - b2) * g**2
        if self.nesterov:
            m_hat = b1 * self.m / (1.0 - b1 ** (k + 1)) + (1.0 - b1) * g / (1.0 - b1**k)
        else:
            m_hat = self.m / (1.0 - b1**k)
        v_hat = self.v / (1.0 - b2**k)
        decay = self.wd * p if self.mask is None else np.where(self.mask, self.wd * p, 0.0)
        return -lr * (m_hat / (np.sqrt(v_hat + self.eps_root) + self.eps) + decay)


class nadamw(adamw):
    """Float64 reference of :func:`gradtx.nadamw`: NAdamW, i.e. :class:`adamw` with ``nesterov=True``.

    Dozat 2016 (NAdam) with the decoupled weight decay of Loshchilov & Hutter 2019, scaled by the learning rate::

        u = -lr_t (m_hat / (sqrt(v_hat + eps_root) + eps) + weight_decay p),
        m_hat = b1 m_k / (1 - b1**(k+1)) + (1 - b1) g / (1 - b1**k)   (no decay term where mask is False)

    Call ``step(g, params)`` once per update with the gradient ``g`` and the parameters ``params`` (1-D
    float64 vectors, the whole pytree raveled); it returns the update as a new float64 array and keeps the state
    inside the object.

    Args:
      learning_rate: the step size lr_t: a float, or a callable ``count -> float`` evaluated at the 0-based
        count k - 1 (a schedule of :mod:`gradtx.testing.reference.schedules`), > 0.
      b1: the decay of the first moment, in [0, 1). Default 0.9.
      b2: the decay of the second moment, in [0, 1). Default 0.999.
      eps: added to the root of v_hat, >= 0. Default 1e-8.
      eps_root: added to v_hat under the root, >= 0. Default 0.0.
      mu_dtype: ignored (the reference computes in float64). Default None.
      weight_decay: the decay coefficient (a float), >= 0. Default 1e-4.
      mask: None (decay everywhere) or a boolean vector as long as the raveled parameters, True where the
        decay applies. Default None.
      nesterov: whether to use the Nesterov form (keyword-only; False gives AdamW). Default True.

    Examples:
      >>> import numpy as np
      >>> from gradtx.testing import reference as ref
      >>> opt = ref.nadamw(0.1, weight_decay=0.5)
      >>> print(np.round(ref.run(opt, [[1.0, -2.0], [0.5, 2.0]], params=[1.0, 4.0]), 4))
      [[-0.1974 -0.0526]
       [-0.1421 -0.256 ]]
    """

    def __init__(
        self,
        learning_rate,
        b1=0.9,
        b2=0.999,
        eps=1e-8,
        eps_root=0.0,
        mu_dtype=None,
        weight_decay=1e-4,
        mask=None,
        *,
        nesterov=True,
    ):
        super().__init__(
            learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay, mask, nesterov=nesterov
        )
