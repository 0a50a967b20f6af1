"""`lrtrack train` end to end: a real offline W&B run, read back with `wandb leet inspect`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest
from clitools import assert_one_line_error, lrtrack, only_run_dir

from lrtrack import wandb_files

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")




def test_train_writes_an_offline_run_with_history_artifact_and_image(offline_wandb):
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_SILENT", "WANDB_CONSOLE")}
    proc = lrtrack("train", "--dataset", "digits", "--lr", "0.01", "--epochs", "3", "--offline",
                   env={**env, "COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    run_dir = only_run_dir(offline_wandb)
    # quiet W&B, a start line, one line per epoch (not a terminal), an end line naming the folder,
    # and a final table that fits 80 columns without cutting a cell
    assert "wandb:" not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("run started: lr=0.01 adam, 3 epochs (W&B run ")
    assert [line.split(":")[0] for line in lines[1:4]] == ["run epoch 1/3", "run epoch 2/3", "run epoch 3/3"]
    assert lines[4].startswith("run finished: val/acc ") and lines[4].endswith(str(run_dir.relative_to(Path.cwd())))
    assert "…" not in proc.stdout and max(map(len, lines[5:])) <= 80, proc.stdout  # the table

    summary = wandb_files.read_summary(run_dir)
    assert summary["state"] == "finished"
    assert summary["config"]["lr"] == 0.01 and summary["config"]["dataset"] == "digits"
    assert summary["summary"]["state"] == "finished"
    assert summary["summary"]["best/val_acc"] > 0.9
    assert summary["summary"]["curves"]["_type"] == "image-file"

    records = wandb_files.read_records(run_dir)
    rows = wandb_files.history_rows(records)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    for row in rows:
        assert {"train/loss", "train/acc", "val/loss", "val/acc", "lr", "perf/epoch_seconds", "perf/samples_per_second"} <= set(row)
    (artifact,) = wandb_files.artifacts(records)
    assert artifact["type"] == "model"
    assert sorted(artifact["files"]) == ["best.pt", "final.pt"]
    assert artifact["metadata"]["config"]["lr"] == 0.01
    assert (run_dir / "files" / summary["summary"]["curves"]["path"]).is_file()


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_is_unpacked_from_debian_package(tmp_path):
    data_dir = tmp_path / "data"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = lrtrack("train", "--dataset", "fashion-mnist", "--data-dir", str(data_dir), "--train-size", "2000",
                   "--test-size", "500", "--epochs", "1", "--no-wandb", env={**os.environ, "TMPDIR": str(tmp)})
    assert proc.returncode == 0, proc.stderr
    left = [path.name for path in tmp.rglob("*") if path.suffix in (".pt", ".png")]
    assert not left  # without W&B, the checkpoints and figure are not left in a temporary folder (torch may keep caches)
    raw = data_dir / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == [
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"]


@pytest.mark.parametrize(
    "args, field",
    [
        (["--lr", "-1"], "--lr"),
        (["--optimizer", "adamm"], "--optimizer"),
        (["--epochs", "0"], "--epochs"),
    ],
)
def test_bad_flags_exit_2_with_one_line_naming_the_flag(offline_wandb, args, field):
    assert_one_line_error(lrtrack("train", "--dataset", "digits", *args), field)
    assert not (offline_wandb / "wandb").exists()


def test_bad_yaml_exits_2_and_names_file_and_field(tmp_path, offline_wandb):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: digits\noptimizer: adamm\n")
    assert_one_line_error(lrtrack("train", "--config", str(bad)), str(bad), "optimizer")
    broken = tmp_path / "broken.yaml"
    broken.write_text("lr: [0.1\n")
    proc = lrtrack("train", "--config", str(broken))
    assert proc.returncode == 2 and "malformed YAML" in proc.stderr and "Traceback" not in proc.stderr
    assert not (offline_wandb / "wandb").exists()


def test_missing_data_is_one_clear_error(tmp_path, offline_wandb):
    proc = lrtrack("train", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"), "--epochs", "1")
    assert_one_line_error(proc, "--dataset mnist", "LRTRACK_DATA_DIR")
    assert not (tmp_path / "empty").exists()  # nothing half-written
    assert not (offline_wandb / "wandb").exists()


def test_version():
    proc = lrtrack("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("lrtrack ")


# The console script with torch loaded and a non-daemon thread still writing a file.
UNFINISHED_THREAD = """
import sys, threading, time
import torch  # noqa: F401  (what makes the console script take its fast exit)
from lrtrack.cli import main

def write_late(path=sys.argv[1]):
    time.sleep(1.0)
    with open(path, "w") as out:
        out.write("written")

threading.Thread(target=write_late).start()
sys.argv = ["lrtrack", "--version"]
main()
"""


def test_fast_exit_waits_for_a_non_daemon_thread(tmp_path):
    target = tmp_path / "late.txt"
    proc = subprocess.run([sys.executable, "-c", UNFINISHED_THREAD, str(target)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("lrtrack ")
    assert target.read_text() == "written"  # os._exit would have killed the thread before it wrote


def _command(*path: str):
    import typer.main

    from lrtrack.cli import _register, app

    _register()
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


@pytest.mark.parametrize("model, command", [("lrtrack.config:TrainConfig", ("train",)),
                                            ("lrtrack.config:TrainConfig", ("lr-find",)),
                                            ("lrtrack.agent.settings:AgentSettings", ("agent",)),
                                            ("lrtrack.agent.settings:AgentSettings", ("sweep", "run")),
                                            ("lrtrack.agent.settings:AgentSettings", ("slurm",))])
def test_every_settings_field_is_a_flag_with_its_description_and_default(model, command):
    import importlib

    from lrtrack.formatting import format_value

    module, name = model.split(":")
    settings = getattr(importlib.import_module(module), name)
    options = {opt: param for param in _command(*command).params for opt in param.opts}
    for name, field in settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        assert flag in options, f"{settings.__name__}.{name} has no flag {flag} in lrtrack {' '.join(command)}"
        assert field.description, f"{settings.__name__}.{name} has no description (the flag's help)"
        assert options[flag].help == field.description
        assert options[flag].default is None  # unset flags leave --config values alone
        if field.default is not None:
            assert options[flag].show_default == format_value(field.default)


def test_help_shows_descriptions_defaults_and_choices():
    from typing import get_args

    from lrtrack.config import OptimizerName, TrainConfig
    from lrtrack.formatting import format_value

    proc = lrtrack("train", "--help", env={**os.environ, "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if "--lr " in line)
    assert "Learning rate (peak rate for onecycle)." in line
    assert format_value(TrainConfig.model_fields["lr"].default) in line
    assert "|".join(get_args(OptimizerName)) in proc.stdout
    assert "--nesterov" in proc.stdout and "--no-nesterov" in proc.stdout


def test_a_new_model_field_becomes_a_flag_without_a_second_declaration():
    import typer
    from pydantic import BaseModel, Field
    from typer.testing import CliRunner

    from lrtrack.cli.config_options import with_options

    class Settings(BaseModel):
        width: int = Field(3, description="Width.")
        kind: Literal["a", "b"] = Field("a", description="Kind.")
        extra: dict[str, Any] = Field(default_factory=dict, description="Free-form settings.")

    seen = {}
    app = typer.Typer()

    @app.command()
    @with_options(settings=Settings)
    def command(settings: dict[str, Any], verbose: bool = False) -> None:
        seen.update(settings, verbose=verbose)

    result = CliRunner().invoke(app, ["--width", "5", "--extra", "{depth: 2}", "--verbose"])
    assert result.exit_code == 0, result.output
    assert seen == {"width": 5, "extra": {"depth": 2}, "verbose": True}  # --kind not given: absent


def test_a_key_is_seen_where_wandb_login_reads_it_first_env_then_the_netrc_entry_of_the_host(tmp_path, monkeypatch):
    from lrtrack.tracking import wandb_logged_in

    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")
    assert not wandb_logged_in()
    netrc_file = tmp_path / "netrc"
    netrc_file.write_text("machine api.wandb.ai login user password " + "a" * 40 + "\n")
    netrc_file.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc_file))
    assert not wandb_logged_in()  # a key for another host
    monkeypatch.setenv("WANDB_BASE_URL", "https://api.wandb.ai")
    assert wandb_logged_in()
    monkeypatch.delenv("NETRC")
    monkeypatch.setenv("WANDB_API_KEY", "b" * 40)
    assert wandb_logged_in()
