"""Which speed switches pay off for `lrtrack.train.train_epoch` (issue 6, item 1)?

Each variant trains the same epochs as the baseline (lrtrack's defaults: fp32, fused
Adam, channels_last for the CNNs, eager) on the same data; rounds alternate over all variants
and the first is a warm-up. Printed: median seconds per training epoch and the
ratio to the baseline (< 1 means the switch wins).

    python benchmarks/bench_switches.py --quick
    python benchmarks/bench_switches.py --device cuda
"""

from __future__ import annotations

import time
from typing import Callable

from _common import median, parser, setup

from lrtrack.config import TrainConfig


def epoch_runner(config: TrainConfig, optimizer_options: dict | None = None, channels_last: bool | None = None,
                 threads: int | None = None) -> Callable[[], float]:
    """A function timing one `train_epoch` of ``config`` with the given switches.

    Defaults are what `lrtrack.train.run` does (channels_last for the CNNs, fused optimizer).
    """
    import torch

    from lrtrack.data import load_data
    from lrtrack.models import build_model
    from lrtrack.train import build_optimizer, resolve_device, train_epoch

    device = resolve_device(config.device)
    data = load_data(config, device)
    torch.manual_seed(config.seed)
    model = build_model(config, data.input_shape, data.num_classes).to(device)
    if channels_last is None:
        channels_last = config.model.startswith("cnn")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if config.compile:
        model = torch.compile(model)
    if optimizer_options is None:
        optimizer = build_optimizer(config, model.parameters())
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, **optimizer_options)
    generator = torch.Generator().manual_seed(config.seed + 1)

    def one_epoch() -> float:
        previous = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        tick = time.perf_counter()
        train_epoch(model, optimizer, None, data.train, config, generator)
        seconds = time.perf_counter() - tick
        torch.set_num_threads(previous)
        return seconds

    return one_epoch


def variants(config: TrainConfig) -> dict[str, Callable[[], float]]:
    found = {
        "lrtrack (fused Adam, fp32, eager; channels_last for CNNs)": epoch_runner(config),
        "Adam for-loop (torch's CPU default)": epoch_runner(config, {"foreach": False}),
        "Adam foreach": epoch_runner(config, {"foreach": True}),
        "bf16 autocast": epoch_runner(config.model_copy(update={"precision": "bf16"})),
        "2 threads": epoch_runner(config, threads=2),
        "torch.compile": epoch_runner(config.model_copy(update={"compile": True})),
    }
    if config.model.startswith("cnn"):
        found["contiguous NCHW (no channels_last)"] = epoch_runner(config, channels_last=False)
    return found


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args()
    setup(args)
    rounds = args.rounds or (2 if args.quick else 3)
    n = 6400 if args.quick else None
    configs = [
        TrainConfig(dataset="fashion-mnist", model="fcn", train_size=n, device=args.device),
        TrainConfig(dataset="mnist", data_dir=args.mnist_root, model="cnn", train_size=n and 1600, device=args.device),
    ]
    for config in configs:
        print(f"\n{config.model} on {config.dataset}, batch {config.batch_size}, {config.train_size or 'all'} samples")
        print("| variant | s/epoch | vs baseline |\n|---|---|---|")
        runners = variants(config)
        times: dict[str, list[float]] = {name: [] for name in runners}
        for round_number in range(rounds + 1):
            for name, runner in runners.items():
                seconds = runner()
                if round_number:
                    times[name].append(seconds)
        base = median(times[next(iter(times))])
        for name, values in times.items():
            print(f"| {name} | {median(values):.3f} | {median(values) / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
