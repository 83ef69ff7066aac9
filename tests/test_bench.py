"""The benchmark (gradtx.bench, ``python -m gradtx bench``): correctness of every timed variant, the JSON, the CLI.

Nothing here asserts a time: the bench's functions run in-process on tiny sizes, every fast path (donated,
flat, Optax, torch) must reproduce the plain jitted gradtx step, which itself must follow the closed form of
Adam and of SGD with momentum under a constant gradient.
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from gradtx import bench
from gradtx.__main__ import _build_parser
from gradtx.__main__ import main as cli_main

TINY = bench.BenchConfig.quick(
    w1_size=1000,
    w2_width=4,
    w2_blocks=1,
    w3_widths=(4, 8, 3),
    repeats=2,
    warmup=1,
    min_sample_s=0.0,
    compile_leaves=6,
    memory=False,
)


def _closed_form(opt_name: str, p0: np.ndarray, g: np.ndarray, k: int) -> np.ndarray:
    """Params after ``k`` steps under the constant gradient ``g`` (float64).

    Adam: mu_hat = g and nu_hat = g^2 at every step, so each step is -lr g / (|g| + eps).
    SGD momentum: t_j = g (1 - m^j) / (1 - m), each step is -lr t_j.
    """
    p0, g = p0.astype(np.float64), g.astype(np.float64)
    if opt_name == "adam":
        return p0 - k * bench.LR * g / (np.abs(g) + 1e-8)
    m = bench.MOMENTUM
    return p0 - bench.LR * g * sum((1 - m**j) / (1 - m) for j in range(1, k + 1))


@pytest.mark.parametrize("opt_name", bench.OPTIMIZERS)
@pytest.mark.parametrize("wname", ["W1", "W2"])
def test_every_variant_equals_the_plain_step(opt_name, wname):
    shapes = bench.workload(wname, TINY)
    variants = bench.make_variants(opt_name, shapes, TINY)
    names = [v.name for v in variants]
    expected = ["gradtx-jit", "gradtx-donate", "gradtx-flat"]
    if bench.available("optax"):
        expected += ["optax-jit", "optax-donate"]
    if bench.available("torch"):
        expected += ["torch-foreach", "torch-fused"]
    assert names == expected

    diffs = bench.check_variants(variants, steps=3)
    assert set(diffs) == set(expected)
    assert all(d <= 1e-5 for d in diffs.values()), diffs

    # The reference itself: the plain step after 3 steps against the closed form, in float64.
    p0 = jax.tree.leaves(bench._random_tree(shapes, TINY.seed, 1.0))
    g = jax.tree.leaves(bench._random_tree(shapes, TINY.seed + 1, 1e-2))
    got = variants[0].params()
    for a, x0, gx in zip(got, p0, g):
        np.testing.assert_allclose(a, _closed_form(opt_name, x0, gx, 3), rtol=1e-6, atol=1e-6)

    # Donated variants keep working when fed their own outputs (time_variants resets and steps them again).
    times = bench.time_variants(variants, repeats=1, warmup=1, min_sample_s=0.0)
    assert set(times) == set(expected) and all(len(t) == 1 and t[0] > 0 for t in times.values())
    for v in variants:
        v.close()


def test_check_variants_catches_a_wrong_variant():
    shapes = bench.workload("W3", TINY)
    params0 = bench._random_tree(shapes, 0, 1.0)
    grads = bench._random_tree(shapes, 1, 1e-2)
    right = bench.adam(bench.LR)
    wrong = bench.adam(2 * bench.LR)
    variants = [
        bench.JaxVariant("plain", jax.jit(bench._plain_step(right)), right.init, params0, grads),
        bench.JaxVariant("wrong-lr", jax.jit(bench._plain_step(wrong)), wrong.init, params0, grads),
    ]
    with pytest.raises(AssertionError, match="wrong-lr differs from the plain gradtx step"):
        bench.check_variants(variants)


def test_workload_sizes():
    full = bench.BenchConfig()
    assert bench._param_count(bench.workload("W1", full)) == (1, 2**24)
    leaves, params = bench._param_count(bench.workload("W2", full))
    assert 550 <= leaves <= 650 and 18_000_000 <= params <= 22_000_000
    leaves, params = bench._param_count(bench.workload("W3", full))
    assert leaves == 10 and 45_000 <= params <= 55_000
    assert bench._param_count(bench.workload("leaves:2000", full))[0] == 2000
    with pytest.raises(ValueError, match="workload"):
        bench.workload("W4", full)


def test_summarize_gb_s_and_paired_ratios():
    times = {"a": [0.002, 0.004, 0.003], "optax-donate": [0.001, 0.002, 0.003]}
    rows = bench.summarize(times, nbytes=1_000_000, traffic=7, roof_gbs=10.0)
    assert rows["a"]["median_ms"] == pytest.approx(3.0)
    assert rows["a"]["gb_s"] == pytest.approx(7e6 / 0.003 / 1e9)
    assert rows["a"]["roofline_pct"] == pytest.approx(100 * 7e6 / 0.003 / 1e9 / 10.0)
    # Paired: median of (2/1, 4/2, 3/3) = 2, not the ratio of medians (3/2).
    assert rows["a"]["ratio_vs_optax-donate"] == pytest.approx(2.0)
    assert "ratio_vs_optax-donate" not in rows["optax-donate"]


@pytest.fixture(scope="module")
def tiny_result():
    # One small workload keeps this fast; the variants of W1 and W2 are checked above.
    config = {**TINY.__dict__, "trace_leaves": (4, 8), "optimizers": ("adam",), "workloads": ("W3",), "torch": False}
    return bench.run(bench.BenchConfig.quick(**config))


def test_run_json_has_every_section(tiny_result, tmp_path):
    result = json.loads(json.dumps(tiny_result))  # JSON-serialisable
    env = result["environment"]
    assert env["backend"] == jax.default_backend() and env["jax"] == jax.__version__ and env["cpu_count"] >= 1
    assert set(result["roofline"]) >= {"triad", "triad-donate", "best_gb_s"}
    assert result["roofline"]["best_gb_s"] == max(result["roofline"]["triad"]["gb_s"],
                                                  result["roofline"]["triad-donate"]["gb_s"])
    assert set(result["workloads"]) == {"W3"} and result["config"]["torch"] is False
    for wname, entry in result["workloads"].items():
        assert (entry["leaves"], entry["params"]) == bench._param_count(bench.workload(wname, TINY))
        rows = entry["optimizers"]["adam"]
        for row in rows.values():
            assert {"median_ms", "min_ms", "gb_s", "roofline_pct", "max_abs_diff", "samples_ms"} <= set(row)
            assert len(row["samples_ms"]) == TINY.repeats
            assert row["gb_s"] == pytest.approx(7 * 4 * entry["params"] / row["median_ms"] / 1e6)
        if "optax-donate" in rows:
            assert "ratio_vs_optax-donate" in rows["gradtx-donate"]
    compile_rows = result["compile"]
    assert set(compile_rows) == {"W2", "leaves:6"}
    for row in compile_rows.values():
        assert {"gradtx", "gradtx-flat"} <= set(row)
        assert all(v["lower_s"] > 0 and v["compile_s"] > 0 for v in row.values())
    assert [r["leaves"] for r in result["trace_scaling"]] == [4, 8]
    text = bench.format_report(tiny_result)
    assert f"backend {env['backend']}" in text and "W3 adam" in text and "trace scaling" in text


def test_memory_child_counts_the_live_data():
    out = bench.memory_child("gradtx-donate", 4096)
    # params, grads, mu, nu: 4 float32 arrays of 4096, plus the int32 counter.
    assert out["live_mib"] == pytest.approx((4 * 4 * 4096 + 4) / 2**20)
    assert out["extra_mib"] >= 0 and out["method"]


def test_cli_parses_and_writes_json(tiny_result, tmp_path, monkeypatch, capsys):
    args = _build_parser().parse_args(
        ["bench", "--quick", "--json", "x.json", "--workloads", "W1,W3", "--repeats", "3", "--trace-scaling"]
    )
    assert args.quick and args.json == "x.json" and args.workloads == ("W1", "W3") and args.repeats == 3
    assert args.trace_scaling == (250, 500, 1000, 2000, 4000)
    args = _build_parser().parse_args(["bench", "--trace-scaling", "10,20", "--no-memory", "--no-torch"])
    assert args.trace_scaling == (10, 20) and args.no_memory and args.no_torch and not args.quick
    for bad in (["--workloads", "W9"], ["--optimizers", "adamw"], ["--repeats", "0"], ["--trace-scaling", "x"]):
        with pytest.raises(SystemExit):
            _build_parser().parse_args(["bench", *bad])
    capsys.readouterr()

    seen = {}

    def fake_run(config, log=None):
        seen["config"] = config
        return tiny_result

    monkeypatch.setattr(bench, "run", fake_run)
    path = tmp_path / "bench.json"
    assert cli_main(["bench", "--quick", "--json", str(path), "--workloads", "W3", "--optimizers", "sgdm"]) == 0
    config = seen["config"]
    assert config.workloads == ("W3",) and config.optimizers == ("sgdm",)
    assert config.w1_size == bench.BenchConfig.quick().w1_size < bench.BenchConfig().w1_size
    assert json.loads(path.read_text())["environment"]["jax"] == jax.__version__
    assert "gradtx bench | backend" in capsys.readouterr().out


def test_roofline_counts_three_arrays():
    out = bench.roofline(64, repeats=1, warmup=1, min_sample_s=0.0)
    for name in ("triad", "triad-donate"):
        assert out[name]["gb_s"] == pytest.approx(3 * 4 * 64 / out[name]["median_ms"] / 1e6)


def test_zero1_memory_divides_the_state_by_the_data_axis():
    config = bench.BenchConfig.quick()
    z = bench.zero1_memory(config, data_axis_sizes=(2, 8))
    shapes = jax.tree.leaves(bench.workload("W2", config), is_leaf=lambda s: isinstance(s, tuple))
    n_params = sum(int(np.prod(s)) for s in shapes)
    assert z["replicated_bytes"] == 4 * (2 * n_params + 1)  # mu, nu in float32 and the int32 count
    for n in (2, 8):
        # every leaf of W2 that does not divide by n stays whole on each device
        whole = sum(int(np.prod(s)) for s in shapes if not any(d % n == 0 for d in s))
        split = n_params - whole
        assert z["zero1"][str(n)] == 4 * (2 * (split // n + whole) + 1)
