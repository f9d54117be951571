"""A run SIGKILLed mid-epoch and resumed reaches the same weights as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from safetensors.torch import load_file

from tdpcr_lib.models.checkpoint import read_meta

# 40 training tiles / batch 4 = 10 steps per epoch, 2 epochs; `last/` every 4 steps.
TRAIN_ARGS = [
    "--phase",
    "phase1",
    "--small-model",
    "--epochs",
    "2",
    "--batch-size",
    "4",
    "--crop-size",
    "16",
    "--lr",
    "2e-3",
    "--checkpoint-every",
    "4",
    "--seed",
    "7",
    "--set",
    "val_max_batches=1",
    "--set",
    "warmup_steps=2",
    "--device",
    "cpu",
    "--no-progress",
]

# Same CLI configuration, plus a callback that SIGKILLs this very process after step N (after
# that step's checkpoint if one was due): the work since the last checkpoint is lost, as in a
# real crash.
KILLER = textwrap.dedent("""
    import os, signal, sys
    from tdpcr_lib.cli import train as cli
    from tdpcr_lib.training.run import train_on_folder

    kill_at, argv = int(sys.argv[1]), sys.argv[2:]
    args = cli._parser().parse_args(argv)
    config, model_config = cli.build_configs(args)

    def kill(trainer, step):
        if step == kill_at:
            trainer.wait_for_checkpoints()  # a due save done (mid-save kills: test_async_checkpoint)
            os.kill(os.getpid(), signal.SIGKILL)

    train_on_folder(config, model_config, args.data_root, args.out, device="cpu",
                    callbacks=[kill])
""")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # same kernels in every process
    return env


def _run_cli(root, out) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tdpcr_lib.cli.train", "--data-root", str(root), "--out", str(out), *TRAIN_ARGS],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )


@pytest.fixture(scope="module")
def uninterrupted(tiny_luojiaset_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "straight"
    done = _run_cli(tiny_luojiaset_root, out)
    assert done.returncode == 0, done.stderr
    return out


# mid epoch 1; mid epoch 2 (after a validation); right after the last step's checkpoint but
# before that epoch's validation
@pytest.mark.parametrize("kill_at", [5, 14, 20])
def test_sigkilled_run_resumes_to_identical_weights(kill_at, uninterrupted, tiny_luojiaset_root, tmp_path):
    out = tmp_path / "killed"
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLER,
            str(kill_at),
            "--data-root",
            str(tiny_luojiaset_root),
            "--out",
            str(out),
            *TRAIN_ARGS,
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    last_step = kill_at // 4 * 4
    meta = read_meta(out / "last")
    assert meta["step"] == last_step  # the newest checkpoint before the kill survived intact

    resumed = _run_cli(tiny_luojiaset_root, out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"step {last_step}" in resumed.stdout  # it did resume, not restart
    assert json.loads(resumed.stdout[resumed.stdout.index("{") :])["steps"] == 20

    expected = load_file(str(uninterrupted / "last" / "model.safetensors"))
    got = load_file(str(out / "last" / "model.safetensors"))
    assert expected.keys() == got.keys()
    mismatched = [k for k in expected if not (expected[k] == got[k]).all()]
    assert not mismatched, f"weights differ after resume: {mismatched[:5]}"
    straight_history = json.loads((uninterrupted / "history.json").read_text())["epochs"]
    resumed_history = json.loads((out / "history.json").read_text())["epochs"]
    for a, b in zip(straight_history, resumed_history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-9)
        assert a["val_psnr"] == pytest.approx(b["val_psnr"], rel=1e-9)
