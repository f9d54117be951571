"""Faults that must never lose data or leave a half-state (issue 12), and the good behaviours kept.

Each test builds its bad folder or file on the fly. The crash tests run the real code in a child
process that SIGKILLs itself at a precise moment (a hook wrapped around one rename or one call),
then run the same command again and check the folder is whole: nothing the user wrote is gone,
no leftover of ours stays behind, and what is published is one consistent set.

Covered: archive extraction never deletes a folder tdpcr did not write (1); a training run killed
in the checkpoint swap window resumes instead of starting afresh and deleting ``best/``, and
staging folders of killed saves are cleaned (2, 10); prediction products are published as one
unit, stale products are removed, foreign files stay, leftovers are cleaned (3, 10); an
interrupted ``tdpcr data synth`` resumes (11); flipped bytes in checkpoint files are refused on
load (6). Kept: exact resume after SIGKILL, archives refusing path traversal and escaping links,
no pickle ever loaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest
import rasterio
import torch
from safetensors.torch import load_file

from tdpcr_lib.cli import data as data_cli
from tdpcr_lib.datasets.archives import EXTRACTION_MARKER, ExtractionRefused, written_by_extraction
from tdpcr_lib.datasets.errors import DataIntegrityError
from tdpcr_lib.datasets.luojiaset.acquire import prepare_luojiaset
from tdpcr_lib.datasets.sources import ensure_dataset
from tdpcr_lib.datasets.synthetic.scenes import make_synthetic_scene
from tdpcr_lib.inference.inputs import PredictionInputError
from tdpcr_lib.inference.metadata import portable_path
from tdpcr_lib.inference.publish import PUBLISH_DIR, STAGING_PREFIX
from tdpcr_lib.inference.scene import predict_scene
from tdpcr_lib.models.build import build_model
from tdpcr_lib.models.checkpoint import CheckpointError, load_model, load_trainer_state, read_meta, save_checkpoint
from tdpcr_lib.models.checkpoint_files import recover_checkpoint, staging_dirs
from tdpcr_lib.models.config import ModelConfig
from tdpcr_lib.training.run import clear_run, recover_run

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 120


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=_env(), timeout=TIMEOUT)


def _tree(folder: Path) -> dict[str, str]:
    """Relative path → sha256 of every file below ``folder`` (hidden ones included)."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ============================================================================ 1: archives
@pytest.fixture(scope="module")
def dataset_zip(fake_luojiaset_root, tmp_path_factory) -> Path:
    """The fake dataset as ``X.zip`` (top folder ``LuojiaSET-OSFCR/``)."""
    archive = tmp_path_factory.mktemp("archive") / "X.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(fake_luojiaset_root.rglob("*.tif")):
            zf.write(path, "LuojiaSET-OSFCR/" + path.relative_to(fake_luojiaset_root).as_posix())
    return archive


def _user_folder(folder: Path) -> dict[str, str]:
    (folder / "sub").mkdir(parents=True)
    (folder / "thesis.tex").write_text("months of work")
    (folder / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return _tree(folder)


@pytest.mark.parametrize("where", ["beside_the_archive", "extract_to"])
def test_archive_never_replaces_a_folder_tdpcr_did_not_write(dataset_zip, tmp_path, where):
    archive = shutil.copy(dataset_zip, tmp_path / "X.zip")
    target = tmp_path / ("X" if where == "beside_the_archive" else "mine")
    before = _user_folder(target)
    kwargs = {} if where == "beside_the_archive" else {"extract_to": target}
    with pytest.raises(ExtractionRefused, match=rf"{target}.*overwrite=True"):
        prepare_luojiaset(archive, **kwargs)
    assert _tree(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["X.zip", target.name])


def test_notebook_00_never_replaces_a_folder_tdpcr_did_not_write(dataset_zip, tmp_path):
    import papermill as pm  # noqa: PLC0415 - heavy, only this test runs a notebook

    archive = shutil.copy(dataset_zip, tmp_path / "X.zip")
    before = _user_folder(tmp_path / "X")
    with pytest.raises(pm.PapermillExecutionError, match="ExtractionRefused"):
        pm.execute_notebook(
            str(REPO / "notebooks" / "00_get_data.ipynb"),
            str(tmp_path / "executed.ipynb"),
            parameters={
                "SMOKE": True,
                "SOURCE": "luojiaset",
                "DATA_ROOT": str(archive),
                "REPORTS_DIR": str(tmp_path / "reports"),
                "MANIFEST_DIR": str(tmp_path / "manifest"),
            },
            kernel_name="python3",
            cwd=str(REPO / "notebooks"),
            progress_bar=False,
        )
    assert _tree(tmp_path / "X") == before


@pytest.mark.parametrize("state", ["empty", "earlier_tdpcr_extraction", "overwrite_flag"])
def test_archive_replaces_only_what_it_may(dataset_zip, tmp_path, state, caplog):
    caplog.set_level(logging.INFO, logger="tdpcr_lib")
    archive = shutil.copy(dataset_zip, tmp_path / "X.zip")
    target = tmp_path / "X"
    target.mkdir()
    overwrite = False
    if state == "earlier_tdpcr_extraction":  # an extraction of ours whose data was removed
        (target / EXTRACTION_MARKER).write_text(json.dumps({"archive": "X.zip"}))
        (target / "leftover.txt").write_text("x")
    elif state == "overwrite_flag":
        _user_folder(target)
        overwrite = True
    root = prepare_luojiaset(archive, overwrite=overwrite)
    assert root == target / "LuojiaSET-OSFCR"
    record = written_by_extraction(target)
    assert record["archive"] == "X.zip" and record["size"] == Path(archive).stat().st_size
    assert record["sha256"] == hashlib.sha256(Path(archive).read_bytes()).hexdigest()
    assert not (target / "leftover.txt").exists() and not (target / "thesis.tex").exists()
    if state != "empty":  # said before anything was replaced
        assert "it will replace" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X", "X.zip"]  # no temp folders


@pytest.mark.parametrize("ours", [True, False])
def test_leftover_extraction_folders_are_cleaned_only_when_ours(dataset_zip, tmp_path, ours):
    archive = shutil.copy(dataset_zip, tmp_path / "X.zip")
    leftover = tmp_path / ".X.extracting-deadbeef"  # what a SIGKILL mid-extraction leaves
    leftover.mkdir()
    (leftover / "half.tif").write_bytes(b"\0" * 10)
    if ours:
        (leftover / EXTRACTION_MARKER).write_text(json.dumps({"archive": "X.zip"}))
    prepare_luojiaset(archive)
    assert leftover.exists() is not ours


def _tar_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        tf.addfile(member, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize("kind", ["zip_dotdot", "zip_absolute", "tar_dotdot", "tar_symlink_out", "tar_hardlink_out"])
def test_unsafe_archives_are_refused(tmp_path, kind):
    archive = tmp_path / ("evil.zip" if kind.startswith("zip") else "evil.tar")
    if kind.startswith("zip"):
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("../escape.txt" if kind == "zip_dotdot" else "/tmp/escape.txt", "x")
    elif kind == "tar_dotdot":
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        archive.write_bytes(_tar_with(info, b"x"))
    else:
        kind_byte = tarfile.SYMTYPE if kind == "tar_symlink_out" else tarfile.LNKTYPE
        archive.write_bytes(_tar_with(_link("data/link", "/etc/passwd", kind_byte)))
    with pytest.raises(DataIntegrityError):
        prepare_luojiaset(archive)
    assert not (tmp_path.parent / "escape.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [archive.name]  # nothing left behind


# ============================================================================ 6: weights on load
@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build_model(ModelConfig.preset("tiny", with_seg_decoder=True))


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) - 5] ^= 0xFF  # inside the tensor data: the header still parses
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("file", ["model.safetensors", "trainer_state.safetensors", "trainer_state.json"])
def test_flipped_bytes_are_refused_on_load(tiny_model, tmp_path, file):
    ck = save_checkpoint(
        tmp_path / "ck", tiny_model, phase="phase1", epoch=1, step=3, trainer_state={"step": 3, "t": torch.arange(8.0)}
    )
    if file.endswith(".json"):
        path = ck / file
        path.write_text(path.read_text().replace('"step": 3', '"step": 4'))
    else:
        _flip_a_byte(ck / file)
    load = (lambda: load_model(ck)) if file == "model.safetensors" else (lambda: load_trainer_state(ck))
    with pytest.raises(CheckpointError, match=rf"{ck / file}.*sha256"):
        load()


def test_checkpoints_without_hashes_still_load(tiny_model, tmp_path):
    ck = save_checkpoint(tmp_path / "ck", tiny_model, phase="phase2", epoch=1, step=3)
    meta = json.loads((ck / "config.json").read_text())
    assert set(meta["sha256"]) == {"model.safetensors"}
    del meta["sha256"]  # as written by tdpcr before hashes were recorded
    (ck / "config.json").write_text(json.dumps(meta))
    model, _ = load_model(ck)
    assert all(
        (a == b).all() for a, b in zip(model.state_dict().values(), tiny_model.state_dict().values(), strict=True)
    )


def test_no_pickle_is_ever_loaded(tiny_model, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was loaded")

    ck = save_checkpoint(
        tmp_path / "ck",
        tiny_model,
        phase="phase1",
        epoch=1,
        step=3,
        trainer_state={"rng": torch.random.get_rng_state(), "k": (1, 2.5)},
    )
    for target, name in [(torch, "load"), (pickle, "load"), (pickle, "loads")]:
        monkeypatch.setattr(target, name, refuse)
    load_model(ck)
    assert load_trainer_state(ck)["k"] == (1, 2.5)


# ============================================================================ 2, 10: training
def _save(model, directory: Path, step: int) -> Path:
    return save_checkpoint(directory, model, phase="phase1", epoch=1, step=step, trainer_state={"step": step})


@pytest.mark.parametrize(
    "state",
    ["only_complete_staging", "old_and_complete_staging", "incomplete_staging", "corrupt_staging", "twelve_kills"],
)
def test_checkpoint_recovery(tiny_model, tmp_path, state):
    run = tmp_path / "run"
    best = _save(tiny_model, run / "best", 10)
    best_files = _tree(best)
    last = _save(tiny_model, run / "last", 10)
    staged = _save(tiny_model, run / "staged", 20)  # a complete save that never got swapped in
    expected_step = 20
    if state == "only_complete_staging":
        shutil.rmtree(last)
        staged.rename(run / ".last.tmp-0000beef")
    elif state == "old_and_complete_staging":  # killed between the two renames
        last.rename(run / ".last.old")
        staged.rename(run / ".last.tmp-0000beef")
    elif state == "incomplete_staging":  # killed while writing: no config.json yet
        (staged / "config.json").unlink()
        staged.rename(run / ".last.tmp-0000beef")
        expected_step = 10
    elif state == "corrupt_staging":
        _flip_a_byte(staged / "model.safetensors")
        staged.rename(run / ".last.tmp-0000beef")
        expected_step = 10
    else:
        shutil.rmtree(staged)
        for k in range(12):
            (run / f".last.tmp-{k:08x}").mkdir()
            (run / f".last.tmp-{k:08x}" / ".model.safetensors.x.tmp").write_bytes(b"\0" * 99)
        expected_step = 10
    (run / "notes.txt").write_text("mine")

    actions = recover_run(run)
    assert actions
    assert read_meta(run / "last")["step"] == expected_step
    assert load_trainer_state(run / "last")["step"] == expected_step
    assert _tree(run / "best") == best_files  # best/ is never lost
    assert sorted(p.name for p in run.iterdir()) == ["best", "last", "notes.txt"]
    assert recover_run(run) == []  # idempotent


@pytest.mark.parametrize("cleanup", [recover_run, clear_run])
def test_leftovers_of_killed_saves_are_removed(tmp_path, cleanup):
    run = tmp_path / "run"
    run.mkdir()
    for name in (".last.tmp-00000001", ".best.tmp-00000002"):
        (run / name).mkdir()
        (run / name / "model.safetensors").write_bytes(b"\0" * 100)
    (run / ".history.json.abc123.tmp").write_text("{")
    (run / "mine.txt").write_text("mine")
    (run / ".mine-hidden").write_text("mine")
    cleanup(run)
    assert sorted(p.name for p in run.iterdir()) == [".mine-hidden", "mine.txt"]
    assert staging_dirs(run / "last") == []


TRAIN_ARGS = [
    "--phase",
    "phase1",
    "--small-model",
    "--epochs",
    "2",
    "--batch-size",
    "8",
    "--crop-size",
    "16",
    "--lr",
    "2e-3",
    "--checkpoint-every",
    "0",
    "--seed",
    "3",
    "--set",
    "val_max_batches=1",
    "--set",
    "warmup_steps=1",
    "--device",
    "cpu",
    "--no-progress",
]

# Kills itself inside the first swap of `last/`: after `best/` is in place and `last/`'s
# staging folder is complete, before it is renamed in (the swap window of issue 12, item 2).
SWAP_KILLER = textwrap.dedent("""
    import os, signal, sys
    from tdpcr_lib.cli import train as cli
    from tdpcr_lib.models import checkpoint
    from tdpcr_lib.training.run import train_on_folder

    real = checkpoint.swap_in
    def swap_in(staging, directory):
        if directory.name == "last":
            os.kill(os.getpid(), signal.SIGKILL)
        real(staging, directory)
    checkpoint.swap_in = swap_in
    args = cli._parser().parse_args(sys.argv[1:])
    config, model_config = cli.build_configs(args)
    train_on_folder(config, model_config, args.data_root, args.out, device="cpu")
""")


@pytest.fixture(scope="module")
def straight_run(tiny_luojiaset_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("straight") / "run"
    done = _python("-m", "tdpcr_lib.cli.train", "--data-root", str(tiny_luojiaset_root), "--out", str(out), *TRAIN_ARGS)
    assert done.returncode == 0, done.stderr
    return out


def test_kill_in_the_swap_window_resumes_and_keeps_best(straight_run, tiny_luojiaset_root, tmp_path):
    out = tmp_path / "run"
    killed = _python("-c", SWAP_KILLER, "--data-root", str(tiny_luojiaset_root), "--out", str(out), *TRAIN_ARGS)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (out / "best" / "config.json").is_file() and not (out / "last").exists()
    assert len(staging_dirs(out / "last")) == 1  # only the complete staging folder survived
    best_files = _tree(out / "best")

    resumed = _python(
        "-m", "tdpcr_lib.cli.train", "--data-root", str(tiny_luojiaset_root), "--out", str(out), *TRAIN_ARGS
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "promoted the complete checkpoint" in resumed.stdout
    assert "step 5" in resumed.stdout  # resumed after epoch 1 (5 steps), not restarted
    assert staging_dirs(out / "last") == [] and staging_dirs(out / "best") == []
    # exact resume: the same final weights as the run that was never killed
    expected = load_file(str(straight_run / "last" / "model.safetensors"))
    got = load_file(str(out / "last" / "model.safetensors"))
    assert all((expected[k] == got[k]).all() for k in expected)
    if read_meta(out / "best")["epoch"] == 1:
        assert _tree(out / "best") == best_files  # epoch 2 was not better: best/ kept


# ============================================================================ 3, 10: prediction
@pytest.fixture(scope="module")
def scene_and_checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict")
    scene = make_synthetic_scene(folder / "scene", 48, 40, seed=2)
    torch.manual_seed(1)
    phase2 = save_checkpoint(
        folder / "phase2",
        build_model(ModelConfig.preset("tiny", with_seg_decoder=True)),
        phase="phase2",
        epoch=1,
        step=1,
    )
    phase1 = save_checkpoint(
        folder / "phase1",
        build_model(ModelConfig.preset("tiny", with_seg_decoder=False)),
        phase="phase1",
        epoch=1,
        step=1,
    )
    return scene, phase1, phase2


def _predict(scene, checkpoint, out, **kwargs):
    return predict_scene(
        scene.s2_cloudy,
        scene.s1,
        checkpoint,
        out,
        tile=32,
        overlap=8,
        device="cpu",
        progress=False,
        blocksize=16,
        **kwargs,
    )


def _assert_consistent(out: Path, checkpoint: Path | None = None) -> None:
    """prediction.json (if present) lists exactly the products beside it; no leftovers."""
    products = {p.name for p in out.glob("*.tif")}
    summary = out / "prediction.json"
    if summary.is_file():
        data = json.loads(summary.read_text())
        assert {Path(p).name for p in data["outputs"].values()} == products
        if checkpoint is not None:  # products name the checkpoint by its portable run id
            assert data["checkpoint"] == portable_path(str(checkpoint), out)
            for name in products:
                with rasterio.open(out / name) as src:
                    assert src.tags()["CHECKPOINT"] == portable_path(str(checkpoint), out)


def test_phase1_into_a_phase2_folder_removes_the_old_land_cover(scene_and_checkpoints, tmp_path):
    scene, phase1, phase2 = scene_and_checkpoints
    out = tmp_path / "out"
    out.mkdir()
    (out / "my_notes.txt").write_text("mine")
    _predict(scene, phase2, out, write_prompt=True)
    assert (out / "land_cover.tif").is_file()
    with pytest.warns(UserWarning, match="no segmentation head"):
        _predict(scene, phase1, out)
    assert sorted(p.name for p in out.iterdir()) == ["cloud_free.tif", "my_notes.txt", "prediction.json"]
    _assert_consistent(out, phase1)


@pytest.mark.parametrize("name", ["land_cover.tif", "prediction.json"])
def test_a_foreign_file_of_a_product_name_is_never_replaced(scene_and_checkpoints, tmp_path, name):
    scene, _, phase2 = scene_and_checkpoints
    out = tmp_path / "out"
    out.mkdir()
    (out / name).write_text("the user's own file")
    with pytest.raises(PredictionInputError, match=rf"{out / name}.*not written by tdpcr"):
        _predict(scene, phase2, out)
    assert sorted(p.name for p in out.iterdir()) == [name]
    assert (out / name).read_text() == "the user's own file"


# The second prediction (phase-1 checkpoint, no land cover) kills itself at a given moment.
PREDICT_KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from tdpcr_lib.datasets.synthetic.scenes import make_synthetic_scene
    from tdpcr_lib.inference import predictor, scene as scene_module, scene_loop

    moment, s2, s1, checkpoint, out = sys.argv[1:6]
    out = Path(out)
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)
    real_replace, real_rename = os.replace, os.rename

    def replace(src, dst, *a, **k):
        real_replace(src, dst, *a, **k)
        if moment == "after_cloud_free_renamed_in" and Path(dst) == out / "cloud_free.tif":
            die()
    def rename(src, dst, *a, **k):
        real_rename(src, dst, *a, **k)
        if moment == "after_staging_renamed" and Path(dst).name == ".tdpcr-publish":
            die()
    os.replace, os.rename = replace, rename
    if moment == "mid_prediction":  # strips and partial files exist, nothing is final
        real_batch, calls = scene_loop.predict_tile_batch, []
        def batch(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                die()
            return real_batch(*args, **kwargs)
        scene_loop.predict_tile_batch = batch  # where the strip loop looks it up
    scene_module.predict_scene(s2, s1, checkpoint, out, tile=32, overlap=8, device="cpu",
                               progress=False, blocksize=16)
""")


@pytest.mark.parametrize("moment", ["mid_prediction", "after_staging_renamed", "after_cloud_free_renamed_in"])
def test_killed_prediction_never_mixes_runs(scene_and_checkpoints, tmp_path, moment):
    scene, phase1, phase2 = scene_and_checkpoints
    out = tmp_path / "out"
    out.mkdir()
    (out / "my_notes.txt").write_text("mine")
    (out / ".cloud_free.k3j4.partial.tif").write_bytes(b"\0")  # left by an older tdpcr
    _predict(scene, phase2, out, write_prompt=True)
    assert not (out / ".cloud_free.k3j4.partial.tif").exists()
    first = _tree(out)

    killed = _python("-c", PREDICT_KILLER, moment, str(scene.s2_cloudy), str(scene.s1), str(phase1), str(out))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    _assert_consistent(out)  # even right after the kill: no prediction.json describes a mix
    if moment == "mid_prediction":
        assert _tree(out).keys() - first.keys()  # a staging folder with partial files ...
        assert {k: v for k, v in _tree(out).items() if k in first} == first  # ... old set intact

    with pytest.warns(UserWarning, match="no segmentation head"):
        _predict(scene, phase1, out)  # the same command again
    assert sorted(p.name for p in out.iterdir()) == ["cloud_free.tif", "my_notes.txt", "prediction.json"]
    assert not any(p.name.startswith((STAGING_PREFIX, PUBLISH_DIR)) for p in out.iterdir())
    _assert_consistent(out, phase1)


# ============================================================================ 11: synth
SYNTH_ARGS = ["--n-tiles", "10", "--size", "16", "--seed", "5"]

SYNTH_KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from tdpcr_lib.datasets.synthetic import tiles

    moment, root = sys.argv[1], sys.argv[2]
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)
    if moment == "mid_file":  # a hidden temporary of the 17th file exists, not renamed in
        real, calls = tiles.write_geotiff, []
        def write(path, *args, **kwargs):
            calls.append(1)
            if len(calls) == 17:
                path.parent.mkdir(parents=True, exist_ok=True)
                (path.parent / f".{path.name}.x1y2.tif").write_bytes(b"half")
                die()
            return real(path, *args, **kwargs)
        tiles.write_geotiff = write
    progress = (lambda done, total: die() if done == 4 else None) if moment == "between_tiles" \\
        else None
    tiles.make_synthetic_luojiaset(root, n_tiles=10, size=16, seed=5, progress=progress)
""")


@pytest.fixture(scope="module")
def straight_twin(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("twin") / "twin"
    assert data_cli.main(["synth", str(root), *SYNTH_ARGS]) == 0
    return root


def _twin_files(root: Path) -> dict[str, str]:
    # synthetic.json holds timings; split_config.json may hold dates: compare the data
    return {k: v for k, v in _tree(root).items() if k.endswith((".tif", ".csv", ".sha256"))}


@pytest.mark.parametrize(
    ("moment", "rerun"),
    [("between_tiles", "synth"), ("mid_file", "synth --overwrite"), ("between_tiles", "train's ensure_dataset")],
)
def test_interrupted_synth_resumes(straight_twin, tmp_path, moment, rerun, caplog):
    caplog.set_level(logging.INFO, logger="tdpcr_lib")
    root = tmp_path / "twin"
    killed = _python("-c", SYNTH_KILLER, moment, str(root))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert json.loads((root / "synthetic.json").read_text())["status"] == "generating"

    # the same command again (in-process: a second interpreter start costs seconds)
    if rerun.startswith("synth"):
        assert data_cli.main(["synth", str(root), *SYNTH_ARGS, *rerun.split()[1:]]) == 0
    else:  # `tdpcr train --data-root ROOT` / notebooks 01, 02 on the interrupted twin
        assert ensure_dataset(root) == root
    assert "resuming an interrupted generation" in caplog.text
    assert _twin_files(root) == _twin_files(straight_twin)
    assert not [p for p in root.rglob(".*") if p.is_file()]  # no temporaries, no progress log
    info = json.loads((root / "synthetic.json").read_text())
    assert info["status"] == "complete"
    assert info["cloud_kinds"] == json.loads((straight_twin / "synthetic.json").read_text())["cloud_kinds"]


def test_synth_still_refuses_a_foreign_folder(tmp_path, capsys):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "paper.pdf").write_text("mine")
    assert data_cli.main(["synth", str(root), *SYNTH_ARGS, "--overwrite"]) != 0
    assert "not a synthetic twin" in capsys.readouterr().err
    assert sorted(p.name for p in root.iterdir()) == ["paper.pdf"]


def test_recover_checkpoint_leaves_unrelated_siblings(tmp_path, tiny_model):
    _save(tiny_model, tmp_path / "last", 1)
    for name in ("last.bak", ".last.mine", "lastly"):
        (tmp_path / name).mkdir()
    recover_checkpoint(tmp_path / "last")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".last.mine", "last", "last.bak", "lastly"]
