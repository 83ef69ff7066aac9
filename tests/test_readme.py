"""The README tells the truth: its example runs, its names exist, CI runs its test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import gradtx

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command():
    commands = [b.strip() for b in _blocks("bash")]
    test_cmd = next(c for c in commands if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in ci


def test_training_example_runs_and_learns(capsys):
    code = _blocks("python")[0]
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    final = float(namespace["loss"](namespace["params"]))
    assert final < 5e-3
    assert "print(loss(params))" in code
    printed = capsys.readouterr().out
    assert float(printed.strip()) == pytest.approx(final, rel=1e-4)
    # The repr shown in the README is what the example's optimizer prints (schedule elided).
    shown = README.split("`print(opt)` shows the whole recipe:\n\n```\n")[1].split("```")[0]
    actual = repr(namespace["opt"])
    for line in shown.splitlines():
        line = line.strip()
        if "(...)" in line:
            head = line.split("(...)")[0]
            assert head in actual
        else:
            assert line in actual


def test_diagnostics_example_runs_and_tells_the_truth(capsys):
    code = _blocks("python")[1]
    assert "diagnostics.monitored(" in code
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "saddle point" and lines[-1] == "degenerate"
    grad_norm, eff_lr, clip_fraction = (float(x) for x in lines[1].split())
    assert grad_norm < 1e-4 and eff_lr > 0 and 0 < clip_fraction < 1  # converged; the first steps were clipped
    assert float(lines[2]) == 0.05  # the learning rate actually used


def test_every_name_in_the_tables_exists():
    names = set(re.findall(r"^\| `(\w+)", README, flags=re.M))
    names |= set(re.findall(r"`(\w+)\(", README))
    names |= {n for n in re.findall(r"`(\w+)`", README) if n.endswith("_schedule") or n == "exponential_decay"}
    ignore = {"print", "loss", "step", "sigma", "abs"}
    # the contrib comparison tables name gradtx.contrib's optimizers without the prefix
    missing = sorted(n for n in names - ignore if not hasattr(gradtx, n) and not hasattr(gradtx.contrib, n))
    assert not missing, missing
    assert len(names) > 30
