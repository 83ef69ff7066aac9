"""Float32 accuracy of gradtx and Optax: how closely each library's float32 run tracks its own float64 run.

    python benchmarks/float32_accuracy.py [--steps 1000] [--agree 100] [--only adam,rmsprop]

Problem: the ill-conditioned quadratic ``f(x) = 1/2 sum_i lam_i x_i^2`` with ``lam`` log-spaced over
``[1, 1e3]`` (dimension 50, condition number 1e3), from ``x_0 = 1``, driven by a noisy gradient stream
``g_k = lam * x_k + 0.1 xi_k`` (``xi_k`` standard normal, fixed seed, drawn once in float64 and rounded to each
dtype; ``--seeds`` independent streams, 8 by default). Every optimizer runs ``--steps`` steps four times:
{gradtx, Optax} x {float32, float64}. The float32 runs use JAX's default configuration (``jax_enable_x64``
off, as users run float32), the float64 runs turn it on.

Columns, with ``d(a, b) = max_k ||a_k - b_k||_inf / ||b_k||_inf`` over the steps ``k`` of one stream, and the
errors the median of ``d`` over the streams (one stream's maximum is a noisy statistic):

    gradtx err   d(gradtx float32, gradtx float64)    the float32 error of gradtx
    optax err    d(Optax float32, Optax float64)      the float32 error of Optax
    ratio        gradtx err / optax err               <= 1: gradtx's float32 is at least as accurate
    vs optax     d(gradtx float32, Optax float32) over the first ``--agree`` steps (largest over the streams)

The float64 runs of the two libraries agree to ~1e-12 on every optimizer here: both compute the same method, and
the errors are the float32 rounding of each.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gradtx

DIM = 50
SEED = 0
NOISE = 0.1

# name -> factory(lib) -> transformation; learning rates chosen so that every method is stable on the problem.
OPTIMIZERS: dict[str, Callable[[Any], Any]] = {
    "sgd(momentum)": lambda m: m.sgd(1e-3, momentum=0.9),
    "sgd(nesterov)": lambda m: m.sgd(1e-3, momentum=0.9, nesterov=True),
    "adam": lambda m: m.adam(1e-2),
    "adam(b2=0.9999)": lambda m: m.adam(1e-2, b2=0.9999),
    "adam(nesterov)": lambda m: m.adam(1e-2, nesterov=True),
    "adamw": lambda m: m.adamw(1e-2, weight_decay=1e-2),
    "nadam": lambda m: m.nadam(1e-2),
    "nadamw": lambda m: m.nadamw(1e-2, weight_decay=1e-2),
    "radam": lambda m: m.radam(1e-2),
    "amsgrad": lambda m: m.amsgrad(1e-2),
    "adabelief": lambda m: m.adabelief(1e-2),
    "yogi": lambda m: m.yogi(1e-2),
    "adamax": lambda m: m.adamax(1e-2),
    "adamaxw": lambda m: m.adamaxw(1e-2, weight_decay=1e-2),
    "rmsprop": lambda m: m.rmsprop(1e-3),
    "rmsprop(centered)": lambda m: m.rmsprop(1e-3, centered=True),
    "rmsprop(momentum)": lambda m: m.rmsprop(3e-4, momentum=0.9),
    "adagrad": lambda m: m.adagrad(1e-1),
    "adadelta": lambda m: m.adadelta(1.0),
    "adan": lambda m: m.adan(1e-2),
    "novograd": lambda m: m.novograd(3e-3),
    "lion": lambda m: m.lion(1e-3),
    "lamb": lambda m: m.lamb(1e-2),
    "lars": lambda m: m.lars(1e-2),
    "sm3": lambda m: m.sm3(1e-1),
    "adafactor": lambda m: m.adafactor(1e-2),
    "fromage": lambda m: m.fromage(1e-2),
    "polyak_sgd": lambda m: m.polyak_sgd(1e-1),
    "rprop": lambda m: m.rprop(1e-3),
    "signum": lambda m: m.signum(1e-3),
    "optimistic_gd": lambda m: m.optimistic_gradient_descent(5e-4),
}


def problem(steps: int, seeds: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The curvatures ``lam`` and the noise streams ``(seeds, steps, DIM)``, in float64."""
    lam = np.logspace(0.0, 3.0, DIM)
    noise = NOISE * np.random.default_rng(SEED).standard_normal((seeds, steps, DIM))
    return lam, noise


def trajectory(tx: Any, dtype: Any, lam: np.ndarray, noise: np.ndarray, with_value: bool) -> np.ndarray:
    """The iterates ``x_1 .. x_steps`` of ``tx`` on the problem, in ``dtype``, as float64 NumPy
    ``(seeds, steps, DIM)`` (the noise streams run side by side under ``vmap``)."""
    lam_d = jnp.asarray(lam, dtype)
    noise_d = jnp.asarray(noise, dtype)
    x0 = jnp.ones(DIM, dtype)

    def step(carry: Any, xi: jax.Array) -> tuple[Any, Any]:
        x, state = carry
        g = lam_d * x + xi
        extra = {"value": 0.5 * jnp.sum(lam_d * x * x)} if with_value else {}
        u, state = tx.update(g, state, x, **extra)
        x = optax.apply_updates(x, u)
        return (x, state), x

    run = jax.jit(jax.vmap(lambda xi: jax.lax.scan(step, (x0, tx.init(x0)), xi)[1]))
    return np.asarray(run(noise_d), np.float64)


def rel_dev(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``max_k ||a_k - b_k||_inf / ||b_k||_inf`` over the steps ``k`` of each run (one number per seed)."""
    num = np.max(np.abs(a - b), axis=-1)
    den = np.maximum(np.max(np.abs(b), axis=-1), np.finfo(np.float64).tiny)
    return np.max(num / den, axis=-1)


def measure(name: str, steps: int, agree: int, seeds: int = 1) -> tuple[float, float, float]:
    """``(gradtx err, optax err, gradtx vs optax)`` for one optimizer (see the module docstring): the errors
    are medians over the ``seeds`` noise streams, the agreement the largest deviation over them."""
    lam, noise = problem(steps, seeds)
    with_value = name.startswith("polyak")
    runs = {}
    for lib_name, lib in (("gradtx", gradtx), ("optax", optax)):
        with jax.enable_x64(False):
            runs[lib_name, 32] = trajectory(OPTIMIZERS[name](lib), jnp.float32, lam, noise, with_value)
        with jax.enable_x64(True):
            runs[lib_name, 64] = trajectory(OPTIMIZERS[name](lib), jnp.float64, lam, noise, with_value)
    g_err = float(np.median(rel_dev(runs["gradtx", 32], runs["gradtx", 64])))
    o_err = float(np.median(rel_dev(runs["optax", 32], runs["optax", 64])))
    vs = float(np.max(rel_dev(runs["gradtx", 32][:, :agree], runs["optax", 32][:, :agree])))
    return g_err, o_err, vs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--agree", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=8, help="noise streams; errors are their median")
    parser.add_argument("--only", default="", help="comma-separated names (default: all)")
    args = parser.parse_args()
    names = [n for n in OPTIMIZERS if not args.only or n in args.only.split(",")]
    print(f"{'optimizer':<20} {'gradtx err':>11} {'optax err':>11} {'ratio':>7} {'vs optax':>10}")
    for name in names:
        g_err, o_err, vs = measure(name, args.steps, args.agree, args.seeds)
        ratio = g_err / o_err if o_err > 0 else (1.0 if g_err == 0 else float("inf"))
        print(f"{name:<20} {g_err:11.2e} {o_err:11.2e} {ratio:7.2f} {vs:10.2e}", flush=True)


if __name__ == "__main__":
    main()
