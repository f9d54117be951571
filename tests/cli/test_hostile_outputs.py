"""Files deleted or overwritten without a flag (issue 26, items 3-6, 12, 15, 20): one overwrite
rule for every command, README markers that are never guessed, predict's own temporaries only."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch

from tdpcr_lib.cli.data import main as data_main
from tdpcr_lib.cli.evaluate import main as evaluate_main
from tdpcr_lib.cli.report import main as report_main
from tdpcr_lib.evaluation.ablations import stats, verdicts
from tdpcr_lib.inference.publish import recover_products
from tdpcr_lib.models.build import build_model
from tdpcr_lib.models.checkpoint import save_checkpoint
from tdpcr_lib.models.config import ModelConfig

EXIT_USAGE = 2


def _record(tmp_path: Path, **changes) -> Path:
    runs = []
    for model, values in {"tdpcr_full": [30.0, 30.4, 30.2], "pgf_no_prompt": [29.0, 29.5, 29.1]}.items():
        for seed, v in enumerate(values):
            runs.append(
                {
                    "model": model,
                    "seed": seed,
                    "steps": 10,
                    "plateau": True,
                    "metrics": {"psnr": v},
                    "complexity": {"params": 286_478},
                }
            )
    record = {
        "runs": runs,
        "claims": stats.claims(runs),
        "git_sha": "abc1234",
        "device": "cpu",
        "machine": "x",
        "wall_time_s": 600.0,
        "resolved": {"budget": {"mode": "default", "model_size": "default"}},
    }
    record.update(changes)
    path = tmp_path / "04_ablations.json"
    path.write_text(json.dumps(record))
    return path


# ---- item 3: tdpcr data manifest --out -------------------------------------------------------
@pytest.mark.parametrize("existing", ["train.csv", "checksums.sha256", "split_config.json"])
def test_manifest_out_never_replaces_or_deletes_user_files(fake_luojiaset_root, tmp_path, capsys, existing):
    out = tmp_path / "D"
    out.mkdir()
    (out / existing).write_text("mine\n")
    code = data_main(["manifest", str(fake_luojiaset_root), "--out", str(out), "--no-checksums"])
    assert code == EXIT_USAGE
    assert (out / existing).read_text() == "mine\n"
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--overwrite" in err and existing in err


def test_manifest_overwrite_flag_and_own_unchanged_manifest(fake_luojiaset_root, tmp_path, capsys):
    out = tmp_path / "D"
    assert data_main(["manifest", str(fake_luojiaset_root), "--out", str(out)]) == 0
    assert data_main(["manifest", str(fake_luojiaset_root), "--out", str(out)]) == 0  # ours
    assert (
        data_main(["manifest", str(fake_luojiaset_root), "--out", str(out), "--no-checksums"]) == EXIT_USAGE
    )  # would delete checksums.sha256
    assert (out / "checksums.sha256").is_file()
    (out / "train.csv").write_text((out / "train.csv").read_text() + "\n")  # edited by hand
    assert data_main(["manifest", str(fake_luojiaset_root), "--out", str(out)]) == EXIT_USAGE
    assert data_main(["manifest", str(fake_luojiaset_root), "--out", str(out), "--no-checksums", "--overwrite"]) == 0
    assert not (out / "checksums.sha256").exists()


# ---- item 4: predict's recovery --------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        ".land_cover.tif.backup",
        ".prediction.json.old",
        ".cloud_free.tif.mine",
        ".cloud_free.notes.txt",
        ".degradation_prompt.tif.orig",
    ],
)
def test_predict_recovery_keeps_user_dot_files(tmp_path, name):
    (tmp_path / name).write_text("user data")
    own = [".cloud_free.tif.ab12cd_9.tmp", ".land_cover.x1y2z3w4.partial.tif"]
    for tmp in own:
        (tmp_path / tmp).write_text("")
    recover_products(tmp_path)
    assert (tmp_path / name).read_text() == "user data"
    assert not any((tmp_path / tmp).exists() for tmp in own)


def test_stale_empty_scratch_folders_are_removed(tmp_path, monkeypatch):
    import tempfile

    from tdpcr_lib.inference import publish

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale, live, full = (tmp_path / f"tdpcr-predict-{n}" for n in ("old1", "new1", "full"))
    for folder in (stale, live, full):
        folder.mkdir()
    (full / "input.tif").write_text("x")
    past = time.time() - 3600
    os.utime(stale, (past, past))
    os.utime(full, (past, past))
    publish.remove_stale_scratch()
    assert not stale.exists() and live.exists() and full.exists()


# ---- item 5: README markers ------------------------------------------------------------------
def _readme_with_section(tmp_path: Path) -> tuple[Path, dict]:
    readme = tmp_path / "README.md"
    readme.write_text("# t\n\nintro\n\n## Citation\n\ncite\n")
    record = verdicts.load_record(_record(tmp_path))
    verdicts.update_readme(readme, record)
    return readme, record


@pytest.mark.parametrize("damage", ["end_removed", "start_removed", "start_twice", "end_twice", "swapped"])
def test_damaged_readme_markers_are_refused_and_nothing_changes(tmp_path, damage):
    readme, record = _readme_with_section(tmp_path)
    text = readme.read_text()
    if damage == "end_removed":
        text = text.replace(verdicts.END + "\n", "") + "\nmy text after\n"
    elif damage == "start_removed":
        text = text.replace(verdicts.START + "\n", "")
    elif damage == "start_twice":
        text = text + "\n" + verdicts.START + "\n"
    elif damage == "end_twice":
        text = text + "\n" + verdicts.END + "\n"
    else:
        text = text.replace(verdicts.START, "@@").replace(verdicts.END, verdicts.START).replace("@@", verdicts.END)
    readme.write_text(text)
    with pytest.raises(verdicts.VerdictsError, match="markers"):
        verdicts.update_readme(readme, record)
    assert readme.read_text() == text


def test_marker_text_inside_a_verdict_is_refused(tmp_path):
    readme, _ = _readme_with_section(tmp_path)
    path = _record(tmp_path)
    record = json.loads(path.read_text())
    record["claims"][0]["verdict"] = f"fine {verdicts.END} then more"
    path.write_text(json.dumps(record))
    with pytest.raises(verdicts.VerdictsError, match="marker"):
        verdicts.load_record(path)


def test_a_symlinked_readme_stays_a_symlink(tmp_path):
    readme, record = _readme_with_section(tmp_path)
    link = tmp_path / "LINK.md"
    link.symlink_to(readme)
    verdicts.update_readme(link, verdicts.load_record(_record(tmp_path, git_sha="def5678")))
    assert link.is_symlink() and "def5678" in readme.read_text()


def test_a_non_utf8_readme_is_one_line(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_bytes(b"# t\n\xff\xfe caf\xe9\n")
    code = report_main(
        [
            "verdicts",
            "--metrics",
            str(_record(tmp_path)),
            "--readme",
            str(readme),
            "--out",
            str(tmp_path / "v.md"),
            "--timings",
            str(tmp_path / "none.json"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "UTF-8" in err and "README.md" in err
    assert readme.read_bytes() == b"# t\n\xff\xfe caf\xe9\n"


# ---- item 6: --out of report verdicts and evaluate -------------------------------------------
def test_report_verdicts_out_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "README.md"
    out.write_text("my readme\n")
    argv = [
        "verdicts",
        "--metrics",
        str(_record(tmp_path)),
        "--out",
        str(out),
        "--timings",
        str(tmp_path / "none.json"),
    ]
    assert report_main(argv) == EXIT_USAGE
    assert out.read_text() == "my readme\n"
    assert report_main([*argv, "--overwrite"]) == 0
    assert out.read_text().startswith("# Verdicts")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model(ModelConfig.preset("tiny", with_seg_decoder=True))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "best", model, phase="phase2", epoch=0, step=0)


@pytest.mark.parametrize("suffix", [".json", ".md"])
def test_evaluate_out_needs_overwrite(checkpoint, tmp_path, capsys, suffix):
    prefix = tmp_path / "P"
    mine = prefix.with_name("P" + suffix)
    mine.write_text("my notes\n")
    code = evaluate_main([str(checkpoint), "--data-root", str(tmp_path / "nodata"), "--out", str(prefix)])
    assert code == EXIT_USAGE and mine.read_text() == "my notes\n"
    assert "--overwrite" in capsys.readouterr().err


# ---- items 12 and 15: the verdicts' input is checked -----------------------------------------
@pytest.mark.parametrize(
    "change, needle",
    [
        ({"runs": []}, "empty"),
        ({"plateau": "no"}, "plateau"),
        ({"plateau": 1}, "plateau"),
        ({"delta_mean": "0.5x"}, "delta_mean"),
        ({"seed": "0"}, "seed"),
        ({"wall_time_s": "ten"}, "wall_time_s"),
    ],
)
def test_report_verdicts_validates_its_input(tmp_path, capsys, change, needle):
    path = _record(tmp_path)
    record = json.loads(path.read_text())
    if "runs" in change or "wall_time_s" in change:
        record.update(change)
    elif "delta_mean" in change:
        record["claims"][0].update(change)
    else:
        record["runs"][0].update(change)
    path.write_text(json.dumps(record))
    readme = tmp_path / "README.md"
    readme.write_text("# t\n")
    code = report_main(
        [
            "verdicts",
            "--metrics",
            str(path),
            "--readme",
            str(readme),
            "--out",
            str(tmp_path / "v.md"),
            "--timings",
            str(tmp_path / "none.json"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and needle in err
    assert readme.read_text() == "# t\n" and not (tmp_path / "v.md").exists()


@pytest.mark.parametrize(
    "timings",
    [
        {"notebooks": [{"notebook": "01_x"}], "total_seconds": 1},
        {"notebooks": [{"notebook": "01_x", "seconds": "ten"}], "total_seconds": 1},
        b"\xff\xfe",
    ],
)
def test_corrupt_timings_are_one_line(tmp_path, capsys, timings):
    path = tmp_path / "reproduce.json"
    if isinstance(timings, bytes):
        path.write_bytes(timings)
    else:
        path.write_text(json.dumps(timings))
    code = report_main(
        ["verdicts", "--metrics", str(_record(tmp_path)), "--out", str(tmp_path / "v.md"), "--timings", str(path)]
    )
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "reproduce.json" in err
