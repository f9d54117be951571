"""Named protocols in the evaluation: the CLI, the JSON, the markdown and results.md name them."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from tdpcr_lib.cli.evaluate import main
from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
from tdpcr_lib.evaluation.evaluate import evaluate
from tdpcr_lib.evaluation.protocols import protocol_table, split_warning
from tdpcr_lib.evaluation.report import results_markdown
from tdpcr_lib.metrics.protocol_specs import PROTOCOLS
from tdpcr_lib.metrics.protocols import ProtocolAccumulator
from tdpcr_lib.models import ModelConfig, build_model
from tdpcr_lib.models.checkpoint import save_checkpoint


class Identity(nn.Module):
    """The cloudy input as the reconstruction: every protocol can be recomputed from the data."""

    def __init__(self) -> None:
        super().__init__()
        self.config = ModelConfig.small(arch="dsen2cr")
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, optical, sar):
        return {"reconstruction": optical + 0 * self.dummy}


@pytest.fixture(scope="module")
def test_set(tiny_luojiaset_root):
    return LuojiaSETOSFCR(tiny_luojiaset_root, split="test")


def test_protocols_score_the_predictions_the_evaluation_made(test_set):
    result = evaluate(Identity(), test_set, device="cpu", tile=None, progress=False, batch_size=2, protocols=PROTOCOLS)
    protocols = result.meta["protocols"]
    assert list(protocols) == list(PROTOCOLS) and result.meta["protocol"] == "tdpcr"
    # tdpcr is read from the result frame: the same numbers as the main tables
    assert protocols["tdpcr"]["psnr"] == pytest.approx(result.value("psnr"))
    # the others equal an independent pass over the same batches (the model is the identity)
    for name in ("uncrtaints", "dsen2cr"):
        reference = ProtocolAccumulator(name)
        for batch in DataLoader(test_set, batch_size=2):
            reference.update(batch["optical"], batch["target"])
        for key, expected in reference.compute().items():
            assert protocols[name][key] == pytest.approx(expected, rel=1e-5), (name, key)
        assert protocols[name]["n_images"] == len(test_set)
    assert "every target pixel counts as clear" in protocols["allclear"]["note"]
    table = protocol_table(protocols)
    assert list(table.index) == list(PROTOCOLS) and "sam_rad" in table.columns
    markdown = result.to_markdown()
    assert "## Cloud removal under named protocols" in markdown
    assert "- **protocol**: tdpcr" in markdown
    for name in PROTOCOLS:
        assert f"- **{name}** (" in markdown and "comparable with" in markdown
    page = results_markdown(result)
    ours, _ = page.split("## The paper's claims (reference only)")
    assert "under protocol `tdpcr`" in ours and "**uncrtaints** (" in ours


def test_default_evaluation_scores_no_extra_protocol(test_set):
    result = evaluate(Identity(), test_set, device="cpu", tile=None, progress=False)
    assert list(result.meta["protocols"]) == ["tdpcr"]


def test_cli_protocol_option(tiny_luojiaset_root, tmp_path, capsys):
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "run" / "best", build_model(ModelConfig.small()), phase="phase1", epoch=1, step=1)
    code = main(
        [
            str(tmp_path / "run" / "best"),
            "--data-root",
            str(tiny_luojiaset_root),
            "--out",
            str(tmp_path / "eval" / "test"),
            "--no-progress",
            "--tile",
            "none",
            "--protocol",
            "uncrtaints",
            "--protocol",
            "allclear",
        ]
    )
    assert code == 0
    saved = json.loads((tmp_path / "eval" / "test.json").read_text())
    assert list(saved["meta"]["protocols"]) == ["tdpcr", "uncrtaints", "allclear"]
    assert 0 < saved["meta"]["protocols"]["uncrtaints"]["psnr"] < 100
    assert "**allclear** (" in (tmp_path / "eval" / "test.md").read_text()
    capsys.readouterr()
    code = main([str(tmp_path / "run" / "best"), "--data-root", str(tiny_luojiaset_root), "--protocol", "nope"])
    assert code == 2 and "--protocol" in capsys.readouterr().err


def test_leaky_split_is_named_in_reports():
    assert split_warning(None) is None and split_warning("scene-exact") is None
    assert "Leaky split" in split_warning("legacy-substring")
