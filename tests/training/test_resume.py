"""A run SIGKILLed mid-epoch and resumed reaches the same weights as an uninterrupted run."""

from __future__ import annotations

import json
import signal

import pytest
from safetensors.torch import load_file

from tdpcr_lib.models.checkpoint import read_meta

# The run of tests/training/conftest.py plus a callback that SIGKILLs this very process after step
# N (after that step's checkpoint if one was due): the work since the last checkpoint is lost, as
# in a real crash.
KILLER = """
    import os, signal

    kill_at = int(script_args[0])

    def kill(trainer, step):
        if step == kill_at:
            trainer.wait_for_checkpoints()  # a due save done (mid-save kills: test_async_checkpoint)
            os.kill(os.getpid(), signal.SIGKILL)

    train_on_folder(config, model_config, args.data_root, args.out, device="cpu", callbacks=[kill])
"""


# mid epoch 1; mid epoch 2 (after a validation); right after the last step's checkpoint but
# before that epoch's validation
@pytest.mark.parametrize("kill_at", [5, 14, 20])
def test_sigkilled_run_resumes_to_identical_weights(
    kill_at, uninterrupted_run, train_process, tiny_luojiaset_root, tmp_path
):
    out = tmp_path / "killed"
    killed = train_process(tiny_luojiaset_root, out, KILLER, str(kill_at))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    last_step = kill_at // 4 * 4
    meta = read_meta(out / "last")
    assert meta["step"] == last_step  # the newest checkpoint before the kill survived intact

    resumed = train_process(tiny_luojiaset_root, out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"step {last_step}" in resumed.stdout  # it did resume, not restart
    assert json.loads(resumed.stdout[resumed.stdout.index("{") :])["steps"] == 20

    expected = load_file(str(uninterrupted_run / "last" / "model.safetensors"))
    got = load_file(str(out / "last" / "model.safetensors"))
    assert expected.keys() == got.keys()
    mismatched = [k for k in expected if not (expected[k] == got[k]).all()]
    assert not mismatched, f"weights differ after resume: {mismatched[:5]}"
    straight_history = json.loads((uninterrupted_run / "history.json").read_text())["epochs"]
    resumed_history = json.loads((out / "history.json").read_text())["epochs"]
    for a, b in zip(straight_history, resumed_history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-9)
        assert a["val_psnr"] == pytest.approx(b["val_psnr"], rel=1e-9)
