"""Shared fixtures: small LuojiaSET-OSFCR trees built once per test session in a temp folder.

* ``tiny_luojiaset_root``: the synthetic twin (learnable content), 50 tiles of 32 px, 10 per
  bucket so every split is non-empty (8 train, 1 val, 1 test per bucket: 40/5/5); about 2 s to
  build. Use it wherever a working dataset with a manifest is needed (training, evaluation,
  notebooks).
* ``fake_luojiaset_root``: torchgeo-style fake data (random values, real headers and quirks) from
  ``tests/data/luojiaset/make_fake.py`` plus a manifest; for the data-layer tests.
* ``fake_luojiaset_copy``: a private, mutable copy of the fake tree for tests that corrupt files.
* ``fake_sen12mscr_module``: ``tests/data/sen12mscr/make_fake.py`` as a module (``SIZE``,
  ``NO_LAND_COVER``, ``write_fake_sen12mscr``, ``write_fake_archives``).
* ``fake_sen12mscr_tree``: fake SEN12MS-CR (+ land cover in the same root) without a manifest;
  ``fake_sen12mscr_root``: a copy of it with its split manifest and checksums;
  ``fake_sen12mscr_copy``: a private, mutable copy of that root for tests that damage files;
  ``fake_sen12mscr_apart``: the tree as two folders, SEN12MS-CR and SEN12MS land cover.

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


def _load_script(name: str, path: Path):
    """A fake-data script (not a package module) loaded as the module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def fake_data_module():
    """The fake-data script as a module (``write_fake_luojiaset``, ``tile_names``, ``SIZE`` ...)."""
    return _load_script("tdpcr_fake_luojiaset", TESTS_DIR / "data" / "luojiaset" / "make_fake.py")


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
def fake_sen12mscr_module():
    """The SEN12MS-CR fake-data script as a module (``write_fake_sen12mscr``, ``SIZE`` ...)."""
    return _load_script("tdpcr_fake_sen12mscr", TESTS_DIR / "data" / "sen12mscr" / "make_fake.py")


@pytest.fixture(scope="session")
def fake_sen12mscr_tree(tmp_path_factory, fake_sen12mscr_module) -> Path:
    """Fake SEN12MS-CR (+ land cover in the same root), no manifest. Read-only."""
    return fake_sen12mscr_module.write_fake_sen12mscr(tmp_path_factory.mktemp("sen12tree") / "SEN12MS-CR")


@pytest.fixture(scope="session")
def fake_sen12mscr_root(fake_sen12mscr_tree, tmp_path_factory) -> Path:
    """The fake tree with its split manifest (``<root>/manifest/``, checksums included). Read-only."""
    from tdpcr_lib.datasets.sen12mscr.manifest import write_sen12mscr_manifest

    root = Path(shutil.copytree(fake_sen12mscr_tree, tmp_path_factory.mktemp("sen12") / "SEN12MS-CR"))
    write_sen12mscr_manifest(root)
    return root


@pytest.fixture
def fake_sen12mscr_copy(fake_sen12mscr_root, tmp_path) -> Path:
    """A mutable per-test copy of the fake SEN12MS-CR root (manifest included), ``tmp_path/SEN12MS-CR``."""
    return Path(shutil.copytree(fake_sen12mscr_root, tmp_path / "SEN12MS-CR"))


@pytest.fixture
def fake_sen12mscr_apart(fake_sen12mscr_tree, fake_sen12mscr_module, tmp_path) -> tuple[Path, Path]:
    """The fake tree as two folders, no manifest: SEN12MS-CR in ``tmp_path/cr``, its SEN12MS land
    cover (the ``<season>/`` folders) in ``tmp_path/SEN12MS``; returns both, mutable."""
    land_cover = sorted({season for season, *_ in fake_sen12mscr_module.SCENES})
    data = Path(shutil.copytree(fake_sen12mscr_tree, tmp_path / "cr", ignore=shutil.ignore_patterns(*land_cover)))
    for season in land_cover:
        shutil.copytree(fake_sen12mscr_tree / season, tmp_path / "SEN12MS" / season)
    return data, tmp_path / "SEN12MS"


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
