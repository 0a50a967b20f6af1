"""How noisy is each lr-find suggestion, and where does it land against the studies' best rates?

For each study's settings, 25 range tests (seeds 0-24, run as 5 groups of 5 seeds
trained together) give each rule's suggestion 25 times with K=1 (one seed's curve)
and 5 times with K=5 (the median curve of 5 seeds). The spread is the standard
deviation of log10(suggestion) in decades. Prints a Markdown table (README's
"lr-find on the studies").

    OMP_NUM_THREADS=1 nice python benchmarks/lr_find_spread.py
    OMP_NUM_THREADS=1 nice python benchmarks/lr_find_spread.py --studies D --num-iter 400
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from _common import MNIST_SUBSET_ROOT

from lrtrack.config import TrainConfig
from lrtrack.lr_find import SUGGESTION_RULES, RangeTestResult, RangeTestSettings, lr_find

#: The studies' settings (sweeps/*.yaml) and their best published rate.
STUDIES = {
    "A": ({"dataset": "fashion-mnist", "model": "fcn", "optimizer": "adam", "batch_size": 64}, 0.001),
    "B": ({"dataset": "mnist", "model": "cnn-small", "optimizer": "adam", "batch_size": 64, "train_size": 10000,
           "test_size": 2000}, 0.01),
    "D": ({"dataset": "mnist", "model": "cnn", "optimizer": "sgd", "batch_size": 10, "val_split": 0.2}, 0.01),
}
GROUPS, K = 5, 5


def log_std(values: list[float]) -> float:
    return statistics.pstdev([math.log10(v) for v in values])


def geometric_median(values: list[float]) -> float:
    return 10 ** statistics.median(math.log10(v) for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mnist-root", default=str(MNIST_SUBSET_ROOT), help="Folder with MNIST/raw.")
    parser.add_argument("--studies", default="ABD")
    parser.add_argument("--num-iter", type=int, default=RangeTestSettings().num_iter, help="Batches per range test.")
    parser.add_argument("--json", help="Write the numbers here too.")
    args = parser.parse_args()
    rows, out = [], {}
    for name in args.studies:
        values, best = STUDIES[name]
        data_dir = {} if values["dataset"] == "fashion-mnist" else {"data_dir": args.mnist_root}
        singles = {rule: [] for rule in SUGGESTION_RULES}
        medians = {rule: [] for rule in SUGGESTION_RULES}
        for group in range(GROUPS):
            config = TrainConfig(**values, **data_dir, seed=K * group)
            result: RangeTestResult = lr_find(config, RangeTestSettings(seeds=K, num_iter=args.num_iter))
            for rule in SUGGESTION_RULES:
                singles[rule] += result.per_seed[rule]
                medians[rule].append(result.suggestions[rule].lr)
        out[name] = {"best": best, "singles": singles, "medians": medians}
        for rule in SUGGESTION_RULES:
            one, five = [v for v in singles[rule] if v], [v for v in medians[rule] if v]
            typical = geometric_median(five)
            rows.append(f"| {name} | {rule} | {typical:.2g} | {math.log10(typical / best):+.1f} | "
                        f"{log_std(one):.2f} | {log_std(five):.2f} | {log_std(one) / max(log_std(five), 1e-9):.1f}x |")
    print("| study | rule | suggestion (K=5, median of 5 groups) | decades from best lr | spread K=1 | spread K=5 | shrink |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
