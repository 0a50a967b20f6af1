"""Dataset loading: the decoded-tensor cache in front of torchvision (real MNIST subset files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import unpack_mnist

# A fresh process: does loading import torchvision, and what did it load?
PROBE = """
import json, sys, torch
from lrtrack.config import TrainConfig
from lrtrack.data import load_data
data = load_data(TrainConfig(dataset="mnist", data_dir=sys.argv[1]), torch.device("cpu"))
print(json.dumps({"torchvision": "torchvision" in sys.modules, "train": len(data.train), "test": len(data.test),
                  "sum": float(data.train.x.sum()), "labels": data.test.y[:20].tolist()}))
"""


def probe(data_dir, cache_home) -> dict:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(data_dir)], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def private_copy(tmp_path):
    return unpack_mnist(tmp_path / "data")


def test_decoded_tensors_are_cached_and_rebuilt_when_a_raw_file_changes(tmp_path):
    data_dir, cache_home = private_copy(tmp_path), tmp_path / "cache"

    first = probe(data_dir, cache_home)  # decoded by torchvision, then cached
    (cache,) = (cache_home / "lrtrack" / "tensors").glob("mnist-*.pt")
    assert first["torchvision"]
    assert sorted(p.name for p in data_dir.iterdir()) == ["MNIST"]  # the data directory is left alone
    second = probe(data_dir, cache_home)
    assert second == {**first, "torchvision": False}  # the cache alone, same tensors: no torchvision import
    assert (first["train"], first["test"]) == (8000, 2000)

    labels = data_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    body = bytearray(labels.read_bytes())
    body[8] = (body[8] + 1) % 10  # the first test label changes: the cache must not hide it
    labels.write_bytes(bytes(body))
    os.utime(labels, ns=(1, 1))
    third = probe(data_dir, cache_home)
    assert third["torchvision"] and third["labels"][0] == (first["labels"][0] + 1) % 10

    cache.write_bytes(b"not a torch file")  # a damaged cache is rebuilt, never an error
    assert probe(data_dir, cache_home) == third
    assert not probe(data_dir, cache_home)["torchvision"]


def test_a_cache_directory_that_cannot_be_written_is_done_without(tmp_path):
    data_dir, cache_home = private_copy(tmp_path), tmp_path / "cache"
    (cache_home / "lrtrack").mkdir(parents=True)
    (cache_home / "lrtrack" / "tensors").write_text("a file where the cache folder would go")
    assert probe(data_dir, cache_home)["train"] == 8000
    assert probe(data_dir, cache_home)["torchvision"]  # no cache was written, so torchvision again
    assert sorted(p.name for p in (cache_home / "lrtrack").iterdir()) == ["tensors"]  # no stray temporary file
