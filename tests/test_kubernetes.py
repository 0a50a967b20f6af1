"""The Kubernetes Indexed Job manifest: valid against Kubernetes' schema (kubernetes-validate,
offline, no cluster), and the pod's SIGTERM path: the container's command, run as a real
agent process and sent SIGTERM, requeues its run at once, not after the grace period."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from clitools import create, show, wait_for, write_sweep_spec

from lrtrack import wandb_files

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "deploy" / "kubernetes" / "indexed-job.yaml"
K8S_VERSION = "1.30"


def load_job() -> dict:
    (job,) = list(yaml.safe_load_all(MANIFEST.read_text()))
    return job


def test_the_manifest_is_a_valid_indexed_job_with_one_gpu_per_agent_and_secrets_from_a_secret():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    job = load_job()
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)  # raises on any schema violation

    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["parallelism"] == spec["completions"] >= 1
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 300  # an epoch of a real model fits in it
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = {item["name"]: item for item in container["env"]}
    assert env["LRTRACK_STORE"]["valueFrom"]["secretKeyRef"]["name"] == "lrtrack"
    assert env["WANDB_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "lrtrack"
    assert "postgresql://" not in yaml.safe_dump(container)  # no URL, password or key in the manifest


def test_a_broken_manifest_is_rejected_by_the_validator():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    job = load_job()
    job["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "ten minutes"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)


def container_command(job: dict, env: dict[str, str]) -> list[str]:
    """The container's command line: the image's ENTRYPOINT (docker/Dockerfile) plus the
    manifest's args with Kubernetes' $(VAR) expansion, run with this checkout's Python."""
    entrypoint = re.search(r"^ENTRYPOINT\s+(\[.*\])", (REPO / "docker" / "Dockerfile").read_text(), re.M).group(1)
    command = yaml.safe_load(entrypoint)
    assert command[0] == "lrtrack"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    args = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg) for arg in container["args"]]
    return [sys.executable, "-m", "lrtrack", *command[1:], *args]


def test_the_pods_sigterm_requeues_its_run_at_once(tmp_path, offline_wandb):
    store = f"sqlite:///{tmp_path}/store.db"
    sweep_id = create(write_sweep_spec(tmp_path / "g.yaml", "k8s", {"lr": [0.001]}, epochs=2000), store)
    job = load_job()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {**os.environ, "SWEEP_ID": sweep_id, "LRTRACK_STORE": store, "JOB_COMPLETION_INDEX": "0"}
    for item in container["env"]:  # plain values as the kubelet would set them (Secrets: ours above)
        if "value" in item and item["name"] not in ("SWEEP_ID", "WANDB_DIR"):
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], item["value"])
    agent = subprocess.Popen(container_command(job, env), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)  # default grace period (120 s): only the agent's own requeue is quick
    from lrtrack.store import open_store

    def second_epoch() -> bool:
        assert agent.poll() is None, agent.communicate()
        return any(len(run.history) >= 2 for run in opened.runs(sweep_id))

    with open_store(store, create=False) as opened:
        wait_for(second_epoch, 120, "the second epoch in the store", interval=0.1)
        agent.send_signal(signal.SIGTERM)  # what the kubelet sends to PID 1 on eviction or preemption
        signalled = time.monotonic()
        wait_for(lambda: any(a.state == "interrupted" for run in opened.runs(sweep_id) for a in run.attempts), 30,
                 "the run requeued within 30 s of SIGTERM", interval=0.05)
        requeued_after = time.monotonic() - signalled
    agent.communicate(timeout=60)
    assert agent.returncode == 143
    (entry,) = show(sweep_id, store)["runs"]
    assert entry["state"] == "interrupted" and entry["run_state"] == "pending" and requeued_after < 30
    assert entry["worker"].endswith(":k8s-0")
    assert entry["epochs"] < 2000  # stopped after the epoch it was in, not at the end
    summary = wandb_files.read_summary(wandb_files.find_run_dir(entry["wandb_run_id"], offline_wandb))
    assert summary["summary"]["state"] == "interrupted"
