"""Shared test fixtures.

Every test runs W&B in offline mode with its own temporary ``WANDB_DIR`` (real
wandb runs, read back with ``wandb leet inspect``), and with the working
directory in a temporary folder so the default store (``.lrtrack/store.db``)
never touches the checkout.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from clitools import OFFLINE_WANDB, UNSET

REPO = Path(__file__).resolve().parents[1]
#: The MNIST subset the tests use (8,000 train / 2,000 test images, gzip IDX), shipped in the repository.
MNIST_GZ = REPO / "tests" / "data" / "MNIST" / "raw"


def unpack_mnist(root: Path) -> Path:
    """Decompress the shipped MNIST subset into ``root/MNIST/raw`` (torchvision's layout); returns ``root``."""
    import gzip
    import shutil

    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for packed in sorted(MNIST_GZ.glob("*.gz")):
        with gzip.open(packed, "rb") as src, open(raw / packed.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return root


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path, monkeypatch):
    """Real wandb, offline, writing under this test's temporary directory."""
    wandb_dir = tmp_path / "wandb-dir"
    wandb_dir.mkdir()
    for name, value in {**OFFLINE_WANDB, "WANDB_DIR": str(wandb_dir)}.items():
        monkeypatch.setenv(name, value)
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield wandb_dir
    # wandb keeps its settings (the run directory among them) for the life of the
    # process: tear it down so the next test's in-process runs land in its own WANDB_DIR.
    if "wandb" in sys.modules:
        sys.modules["wandb"].teardown()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """One dataset directory for the session: the repository's MNIST subset is unpacked there,
    Fashion-MNIST is unpacked there on first use from Debian's package."""
    return unpack_mnist(tmp_path_factory.mktemp("data"))


@pytest.fixture
def pg_url() -> str:
    """URL of a real PostgreSQL database (set up by scripts/test-postgres.sh).

    Skipped when ``LRTRACK_TEST_PG_URL`` is unset, except under CI, where a
    missing server is a failure rather than a silent skip.
    """
    url = os.environ.get("LRTRACK_TEST_PG_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI=true but LRTRACK_TEST_PG_URL is not set: PostgreSQL tests cannot be skipped in CI")
        pytest.skip("LRTRACK_TEST_PG_URL not set (run scripts/test-postgres.sh)")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, tmp_path) -> str:
    """A fresh, empty store: an SQLite file, or a fresh database on the test PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return request.getfixturevalue("pg_db")


@pytest.fixture
def pg_db(pg_url):
    """A fresh, empty database on the test server for this test; its URL (password included)."""
    import secrets

    from sqlalchemy import NullPool, create_engine, text
    from sqlalchemy.engine import make_url

    name = f"lrtrack_t_{secrets.token_hex(4)}"
    # NullPool: a fresh connection for the drop, even after a test restarted the server
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by fixture scope
def pytest_collection_modifyitems(items):
    """Tests marked ``slow`` first (a stable sort: otherwise in collection order).

    scripts/test.sh hands tests out one by one to two workers (``--dist loadgroup``);
    starting the long ones first keeps one long test from running alone at the end.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
