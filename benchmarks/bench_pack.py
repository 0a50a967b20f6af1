"""Whole sweeps, sequential single runs (`lrtrack.train.run` one after another) vs
packed (`lrtrack.pack.run_packed`, what ``--pack K`` does): wall time and ratio.

Two sweeps on Fashion-MNIST with the fcn model, batch 64:
- study A's 3 learning rates (Adam 1e-3, 5e-4, 1e-4);
- 12 configs: 4 learning rates x (Adam, SGD momentum 0.9, RMSprop).
Both sides log to in-memory loggers (checkpoints and the curves figure included).
Rounds alternate (sequential, packed, ...) after a small warm-up on ``digits``.

    python benchmarks/bench_pack.py --quick         # subsets, about a minute on 2 CPU cores
    python benchmarks/bench_pack.py --device cuda   # issue 6's GPU target: 12 configs <= 2x one alone

On CPU packing must not be slower than sequential (ratio <= 1).
"""

from __future__ import annotations

import time

from _common import median, parser, setup

from lrtrack.config import TrainConfig


def sweeps(quick: bool, device: str) -> dict[str, list[TrainConfig]]:
    data = {"train_size": 6400, "test_size": 1000, "epochs": 1} if quick else {"epochs": 2}
    base = TrainConfig(dataset="fashion-mnist", model="fcn", batch_size=64, device=device, **data)
    three = [base.model_copy(update={"lr": lr}) for lr in (1e-3, 5e-4, 1e-4)]
    optimizers = [{"optimizer": "adam"}, {"optimizer": "sgd", "momentum": 0.9}, {"optimizer": "rmsprop"}]
    twelve = [base.model_copy(update={"lr": lr, **opt}) for opt in optimizers for lr in (3e-3, 1e-3, 3e-4, 1e-4)]
    return {"3 lrs (study A)": three, "12 configs (4 lrs x 3 optimizers)": twelve}


def sequential(configs: list[TrainConfig]) -> float:
    from lrtrack.train import run

    tick = time.perf_counter()
    for config in configs:
        run(config)
    return time.perf_counter() - tick


def packed(configs: list[TrainConfig]) -> float:
    from lrtrack.pack import run_packed

    tick = time.perf_counter()
    run_packed(configs)
    return time.perf_counter() - tick


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    setup(args)
    rounds = args.rounds or (1 if args.quick else 2)
    warm = [TrainConfig(dataset="digits", epochs=1, lr=lr, device=args.device) for lr in (0.01, 0.001)]
    sequential(warm), packed(warm)
    print("| sweep | data | sequential s | packed s | packed/sequential |\n|---|---|---|---|---|")
    for name, configs in sweeps(args.quick, args.device).items():
        seq, pack = [], []
        for _ in range(rounds):
            seq.append(sequential(configs))
            pack.append(packed(configs))
        c = configs[0]
        data = f"{c.train_size or 'all'} train, {c.epochs} epoch{'s' if c.epochs > 1 else ''}"
        print(f"| {name} | {data} | {median(seq):.2f} | {median(pack):.2f} | **{median(pack) / median(seq):.2f}x** |",
              flush=True)


if __name__ == "__main__":
    main()
