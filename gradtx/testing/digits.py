"""The digits task of the integration tests, the notebooks' training demo and benchmarks/contrib_digits.py.

scikit-learn's ``load_digits`` (1,797 8x8 images shipped with scikit-learn, no download; scikit-learn is a test
dependency, imported when :func:`digits` is called), a stratified 75/25 split standardised with the training
split's statistics, and the initial kernels of an MLP 64-64-10 drawn with NumPy (no PRNG program to compile).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["digits", "initial_weights"]


def digits() -> dict[str, jax.Array]:
    """``x_train``, ``y_train``, ``x_test``, ``y_test``: float32 inputs standardised with the training split's
    mean and standard deviation (+0.1), int32 labels.

    The pixels (0..16) are divided by 16, split 75/25 stratified by label with ``random_state=0`` (1,347
    training and 450 test images of 64 pixels), then standardised per pixel.

    Returns:
      A dict of four JAX arrays: ``x_train`` (1347, 64) and ``x_test`` (450, 64) float32, ``y_train`` (1347,)
      and ``y_test`` (450,) int32 labels in 0..9.

    Raises:
      ImportError: when scikit-learn is not installed (``gradtx.testing.digits needs scikit-learn (pip install
        'gradtx[test]')``).

    Example:
      >>> from gradtx.testing.digits import digits
      >>> data = digits()
      >>> print(data["x_train"].shape, data["y_test"].shape, data["y_train"].dtype)
      (1347, 64) (450,) int32
    """
    try:
        from sklearn import datasets, model_selection
    except ImportError as e:  # pragma: no cover - scikit-learn is installed with the test extra
        raise ImportError("gradtx.testing.digits needs scikit-learn (pip install 'gradtx[test]')") from e
    x, y = datasets.load_digits(return_X_y=True)
    split = model_selection.train_test_split(x / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    x_tr, x_te, y_tr, y_te = (np.asarray(a) for a in split)
    mean, std = x_tr.mean(0), x_tr.std(0) + 0.1
    return {
        "x_train": jnp.asarray((x_tr - mean) / std, jnp.float32),
        "y_train": jnp.asarray(y_tr, jnp.int32),
        "x_test": jnp.asarray((x_te - mean) / std, jnp.float32),
        "y_test": jnp.asarray(y_te, jnp.int32),
    }


def initial_weights() -> dict[str, np.ndarray]:
    """LeCun-normal kernels ``w1`` (64, 64) and ``w2`` (64, 10), float32, from NumPy's seed 0 (biases start at 0).

    ``normal / sqrt(64)``: the LeCun-normal scale for a fan-in of 64; the same numbers at every call.

    Returns:
      A dict ``{"w1": (64, 64), "w2": (64, 10)}`` of float32 NumPy arrays.

    Example:
      >>> from gradtx.testing.digits import initial_weights
      >>> w = initial_weights()
      >>> print(w["w1"].shape, w["w2"].shape, w["w2"].dtype)
      (64, 64) (64, 10) float32
    """
    rng = np.random.default_rng(0)
    return {
        "w1": (rng.normal(size=(64, 64)) / 8.0).astype(np.float32),
        "w2": (rng.normal(size=(64, 10)) / 8.0).astype(np.float32),
    }
