"""Dataset loading: the decoded-tensor cache in front of torchvision (real MNIST subset files)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import MNIST_ROOT

from lrtrack.config import TrainConfig
from lrtrack.data import load_data

RAW = MNIST_ROOT / "MNIST" / "raw"

# A fresh process: does loading import torchvision, and what did it load?
PROBE = """
import json, sys, torch
from lrtrack.config import TrainConfig
from lrtrack.data import load_data
data = load_data(TrainConfig(dataset="mnist", data_dir=sys.argv[1]), torch.device("cpu"))
print(json.dumps({"torchvision": "torchvision" in sys.modules, "train": len(data.train), "test": len(data.test),
                  "sum": float(data.train.x.sum()), "labels": data.test.y[:20].tolist()}))
"""


def probe(data_dir) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, str(data_dir)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.skipif(not RAW.is_dir(), reason="the shared MNIST subset is not there")
def test_decoded_tensors_are_cached_and_rebuilt_when_a_raw_file_changes(tmp_path):
    shutil.copytree(RAW, tmp_path / "MNIST" / "raw")
    for path in (tmp_path / "MNIST" / "raw").iterdir():
        path.chmod(0o644)
    cache = tmp_path / ".lrtrack-cache" / "mnist.pt"

    first = probe(tmp_path)  # decoded by torchvision, then cached
    assert first["torchvision"] and cache.is_file()
    second = probe(tmp_path)
    assert not second["torchvision"]  # the cache alone: no torchvision import
    assert second == {**first, "torchvision": False}
    assert (first["train"], first["test"]) == (8000, 2000)

    labels = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    body = bytearray(labels.read_bytes())
    body[8] = (body[8] + 1) % 10  # the first test label changes: the cache must not hide it
    labels.write_bytes(bytes(body))
    os.utime(labels, ns=(1, 1))
    third = probe(tmp_path)
    assert third["torchvision"] and third["labels"][0] == (first["labels"][0] + 1) % 10

    cache.write_bytes(b"not a torch file")  # a damaged cache is rebuilt, never an error
    assert probe(tmp_path) == third


@pytest.mark.skipif(not RAW.is_dir(), reason="the shared MNIST subset is not there")
def test_a_data_directory_where_the_cache_cannot_be_written_goes_without_it(tmp_path):
    import torch

    root = tmp_path / "data"
    shutil.copytree(RAW, root / "MNIST" / "raw")
    (root / ".lrtrack-cache").write_text("a file where the cache folder would go")
    data = load_data(TrainConfig(dataset="mnist", data_dir=str(root), seed=3), torch.device("cpu"))
    assert len(data.train) == 8000 and (root / ".lrtrack-cache").is_file()
    assert sorted(p.name for p in root.iterdir()) == [".lrtrack-cache", "MNIST"]  # no stray temporary file
