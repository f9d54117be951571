"""Shared fixtures: small LuojiaSET-OSFCR trees built once per test session in a temp folder.

* ``tiny_luojiaset_root``: the synthetic twin (learnable content), 50 tiles of 32 px, 10 per
  bucket so every split is non-empty (8 train, 1 val, 1 test per bucket: 40/5/5); about 2 s to
  build. Use it wherever a working dataset with a manifest is needed (training, evaluation,
  notebooks).
* ``fake_luojiaset_root``: torchgeo-style fake data (random values, real headers and quirks) from
  ``tests/data/luojiaset/make_fake.py`` plus a manifest; for the data-layer tests.
* ``fake_luojiaset_copy``: a private, mutable copy of the fake tree for tests that corrupt files.

Session fixtures are read-only by convention: never modify them in a test.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
# tests/<subpackage>/test_*.py mirror tdpcr_lib; the shared helpers (_viz_fakes, _notebook_outputs)
# stay here, importable from every folder.
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))
TINY_N_TILES = 50
TINY_TILE_SIZE = 32


def _load_fake_data_module():
    spec = importlib.util.spec_from_file_location(
        "tdpcr_fake_luojiaset", TESTS_DIR / "data" / "luojiaset" / "make_fake.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def fake_data_module():
    """The fake-data script as a module (``write_fake_luojiaset``, ``tile_names``, ``SIZE`` ...)."""
    return _load_fake_data_module()


@pytest.fixture(scope="session")
def fake_luojiaset_root(tmp_path_factory, fake_data_module) -> Path:
    """Fake LuojiaSET-OSFCR (10 tiles × 5 buckets, 32 px) with ``<root>/manifest/``."""
    from tdpcr_lib.datasets.luojiaset.manifest import write_manifest

    root = fake_data_module.write_fake_luojiaset(tmp_path_factory.mktemp("fake") / "LuojiaSET-OSFCR")
    write_manifest(root, out=root / "manifest")
    return root


@pytest.fixture
def fake_luojiaset_copy(fake_luojiaset_root, tmp_path) -> Path:
    """A mutable per-test copy of the fake tree (including its manifest)."""
    return Path(shutil.copytree(fake_luojiaset_root, tmp_path / "LuojiaSET-OSFCR"))


@pytest.fixture(scope="session")
def tiny_luojiaset_root(tmp_path_factory) -> Path:
    """Synthetic twin: 50 tiles of 32 px, seed 0, with ``<root>/manifest/`` (8/1/1 per bucket)."""
    from tdpcr_lib.datasets.synthetic.tiles import make_synthetic_luojiaset

    return make_synthetic_luojiaset(
        tmp_path_factory.mktemp("twin") / "synthetic_luojiaset", n_tiles=TINY_N_TILES, size=TINY_TILE_SIZE, seed=0
    )


@pytest.fixture(autouse=True, scope="session")
def _one_intra_op_thread():
    """One torch thread for in-process tests: on a 2-core CI machine that also runs notebook
    kernels and loader workers, OpenMP spin-waiting makes two threads several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
