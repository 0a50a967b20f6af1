"""Seconds per epoch of the streaming data path, against the studies' DataLoader loop and the resident path.

The data is a torchvision class by reference (``torchvision.datasets:MNIST`` /
``FashionMNIST``, PIL images read from the IDX files in the data directory), so every
side pays the same per-item cost torchvision's ``__getitem__`` has. Side by side, in
one process, rounds alternating, the first round a warm-up, medians and ratios:

- **streaming**: `lrtrack.train.run` with ``data_path: streaming`` -- a DataLoader with
  ``loader_workers`` worker processes (the default, `lrtrack.data.loader_workers`: on this
  CPU with ``--threads 1``, one per further core), items
  converted in the workers and kept uint8 until the device; and with 0 workers (items read
  in the training process, as the studies' loop does);
- **loop**: the studies' ``DataLoader(datasets.X(root, transform=ToTensor()), batch_size=64,
  shuffle=True)`` loop (``bench_epoch.dataloader_epoch``, ``num_workers=0``, ``loss.item()``
  per step);
- **resident**: `lrtrack.train.run` with ``data_path: resident`` on the same referenced
  dataset (decoded once before the first epoch; the decode is not in the epoch time).

One epoch = the train pass plus the test pass (eval batch 1,000), Adam, batch 64, the same
model (`lrtrack.models.build_model`). ``perf/epoch_seconds`` is what the run logs for its
first epoch; the workers are started before it (in `lrtrack.data.load_data`), so their
start-up is not in it: the seconds `load_data` takes on each path (the resident one
decodes every item) are printed on a second line.

    python benchmarks/bench_streaming.py --quick        # about two minutes on 2 CPU cores
    python benchmarks/bench_streaming.py                # the whole MNIST subset, full Fashion-MNIST
    python benchmarks/bench_streaming.py --device cuda  # on a GPU machine (pinned memory)

Target (issue 13): streaming <= 1.0x the loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from _common import median, parser, setup
from bench_epoch import dataloader_epoch

from lrtrack.config import TrainConfig


@dataclass
class Case:
    name: str
    config: TrainConfig  #: the referenced dataset, data_path auto
    builtin: str  #: the same data as a built-in name (what the studies' loop reads)


def cases(quick: bool, device: str, mnist_root: str) -> list[Case]:
    from lrtrack.data import default_data_dir

    mnist = {"train_size": 4000, "test_size": 1000} if quick else {}
    fashion = {"train_size": 15000, "test_size": 2500} if quick else {}
    fashion_root = str(default_data_dir())  # Debian's Fashion-MNIST is unpacked there (bench_epoch does it)
    return [
        Case("cnn, MNIST subset (torchvision.datasets:MNIST)",
             TrainConfig(dataset="torchvision.datasets:MNIST", data_dir=mnist_root, model="cnn", batch_size=64,
                         epochs=1, device=device, **mnist), "mnist"),
        Case("fcn, Fashion-MNIST (torchvision.datasets:FashionMNIST)",
             TrainConfig(dataset="torchvision.datasets:FashionMNIST", data_dir=fashion_root, model="fcn",
                         batch_size=64, epochs=1, device=device, **fashion), "fashion-mnist"),
    ]


def lrtrack_epoch(config: TrainConfig) -> float:
    from lrtrack.train import run

    return run(config).history[0]["perf/epoch_seconds"]


def load_seconds(config: TrainConfig, device: str) -> float:
    """Seconds `load_data` takes (streaming: opening the dataset and starting the workers;
    resident: decoding every item)."""
    from lrtrack.data import load_data, open_source
    from lrtrack.train import resolve_device

    open_source.cache_clear()
    tick = time.perf_counter()
    data = load_data(config, resolve_device(device))
    seconds = time.perf_counter() - tick
    data.close()
    return seconds


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args()
    setup(args)
    from lrtrack.data import load_data, loader_workers
    from lrtrack.train import resolve_device

    rounds = args.rounds or (2 if args.quick else 3)
    print("| case | streaming s/epoch (workers) | streaming, 0 workers | DataLoader loop | resident | "
          "streaming / loop | streaming 0 / loop | resident / streaming |")
    print("|---|---|---|---|---|---|---|---|")
    for case in cases(args.quick, args.device, args.mnist_root):
        builtin = case.config.model_copy(update={"dataset": case.builtin, "data_dir": case.config.data_dir})
        load_data(builtin, resolve_device(args.device))  # files in place (Debian's Fashion-MNIST unpacked)
        workers = loader_workers(case.config, resolve_device(args.device))
        sides = {
            "streaming": case.config.model_copy(update={"data_path": "streaming"}),
            "streaming0": case.config.model_copy(update={"data_path": "streaming", "loader_workers": 0}),
            "resident": case.config.model_copy(update={"data_path": "resident"}),
        }
        times: dict[str, list[float]] = {name: [] for name in [*sides, "loop"]}
        for round_number in range(rounds + 1):
            measured = {}
            for name, config in sides.items():
                measured[name] = lrtrack_epoch(config)
            measured["loop"] = dataloader_epoch(builtin)
            if round_number:  # round 0 warms up every side
                for name, seconds in measured.items():
                    times[name].append(seconds)
        m = {name: median(values) for name, values in times.items()}
        n = case.config.train_size or "all"
        print(f"| {case.name} ({n} train) | {m['streaming']:.3f} ({workers}) | {m['streaming0']:.3f} | {m['loop']:.3f} | "
              f"{m['resident']:.3f} | **{m['streaming'] / m['loop']:.3f}x** | {m['streaming0'] / m['loop']:.3f}x | "
              f"{m['resident'] / m['streaming']:.3f}x |", flush=True)
        loading = {name: load_seconds(config, args.device) for name, config in sides.items()}
        print(f"| load_data s (before epoch 1) | {loading['streaming']:.2f} | {loading['streaming0']:.2f} | - | "
              f"{loading['resident']:.2f} | | | |", flush=True)


if __name__ == "__main__":
    main()
