"""Usage mistakes are answered like a CLI: the usage line and the problem, exit 2, no traceback."""

from __future__ import annotations

import pytest
from clitools import lrtrack

MISTAKES = [
    (["trian"], "lrtrack [OPTIONS] COMMAND", "No such command 'trian'"),
    (["train", "--bogus", "1"], "lrtrack train [OPTIONS]", "No such option: --bogus"),
    (["train", "--lr"], "lrtrack train [OPTIONS]", "'--lr' requires an argument"),
    (["sweep", "shwo", "x"], "lrtrack sweep [OPTIONS] COMMAND", "No such command 'shwo'"),
    (["agent"], "lrtrack agent [OPTIONS]", "Missing argument"),
]


@pytest.mark.parametrize(("args", "usage", "problem"), MISTAKES, ids=[" ".join(m[0]) for m in MISTAKES])
def test_usage_mistake_prints_usage_and_problem_and_exits_2(args, usage, problem):
    proc = lrtrack(*args, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"Usage: {usage}" in proc.stderr
    assert problem in proc.stderr
