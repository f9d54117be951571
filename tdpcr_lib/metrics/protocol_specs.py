"""What each evaluation protocol is, where it comes from and which published tables it matches.

The formulas live in :mod:`tdpcr_lib.metrics.protocols`; this module holds the words every report
prints beside a protocol's numbers (``docs/metrics.md`` lays them side by side).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: The protocol names, in report order; ``tdpcr`` is the package's own (the default).
PROTOCOLS: tuple[str, ...] = ("tdpcr", "uncrtaints", "glfcr", "dsen2cr", "allclear")

#: The protocol behind every table that does not name another one.
DEFAULT_PROTOCOL = "tdpcr"


@dataclass(frozen=True)
class ProtocolSpec:
    """A protocol's name, one-line definition, source and comparability."""

    name: str
    title: str
    source: str
    definition: str
    comparable_with: str
    not_comparable_with: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


PROTOCOL_SPECS: dict[str, ProtocolSpec] = {
    "tdpcr": ProtocolSpec(
        "tdpcr",
        "this package",
        "tdpcr_lib/metrics/functional.py",
        "clamp to [0, 1]; per image, mean over images; PSNR 10·log10(1/MSE) capped at 100 dB; "
        "SSIM reflection-padded; SAM in degrees over defined pixels",
        "our own reports (validation, ablations, earlier results.md)",
        "from every published table: peers do not clamp and pad SSIM with zeros, so values "
        "differ even on the same split",
    ),
    "uncrtaints": ProtocolSpec(
        "uncrtaints",
        "UnCRtainTS (Ebel et al. 2023)",
        "PatrickTUM/UnCRtainTS model/src/learning/metrics.py, util/pytorch_ssim",
        "no clipping; per image over 13 bands; PSNR 20·log10(1/RMSE); SAM degrees; SSIM "
        "Gaussian 11/1.5 zero-padded; NaN-skipping running mean over images",
        "UnCRtainTS's SEN12MS-CR tables and papers that reuse its metrics.py (e.g. EMRDM, "
        "DGMR) — on SEN12MS-CR, the scene-level test split, S2 clipped to 0–10000 / 10000 and "
        "s2cloudless masks",
        "in split: those tables trained on the substring-matched split (train holds 6 of the 10 test "
        "scenes; `--split legacy-substring` reproduces it); LuojiaSET-OSFCR / the twin have no "
        "published table under this protocol",
    ),
    "glfcr": ProtocolSpec(
        "glfcr",
        "GLF-CR (Xu et al. 2022)",
        "xufangchn/GLF-CR codes/test_CR.py, codes/dataloader.py, metrics.py",
        "centre 128×128 crop of each patch; per image; PSNR 20·log10(1/√MSE) (100 if MSE = 0); "
        "SSIM zero-padded with the window centred at 5.5; SAM/MAE/RMSE as uncrtaints on the crop",
        "GLF-CR's SEN12MS-CR table (PSNR, SSIM on the centre crop)",
        "in split: GLF-CR used DSen2-CR's hold-out scene list (its data.csv), not the "
        "UnCRtainTS test split; tiles under 128 px (the twin's 64²) are scored whole, so only the formulas match",
    ),
    "dsen2cr": ProtocolSpec(
        "dsen2cr",
        "DSen2-CR (Meraner et al. 2020)",
        "ameraner/dsen2-cr Code/tools/image_metrics.py",
        "per Keras batch, batch-size-weighted mean; PSNR 20·log10(1/RMSE) over the batch; "
        "tf.image.ssim (valid convolution); SAM radians in code (`sam_rad`), degrees in the "
        "paper (`sam`); MAE/RMSE on DN/2000 (5 × reflectance)",
        "the DSen2-CR paper's SEN12MS-CR table, in protocol",
        "in data: DSen2-CR trained and tested on a pre-release SEN12MS-CR with its own hold-out scenes; "
        "batch-level PSNR depends on the batch size (ours: the evaluation batch)",
    ),
    "allclear": ProtocolSpec(
        "allclear",
        "AllClear (Zhou et al., NeurIPS 2024)",
        "Zhou-Hangyu/allclear allclear/benchmark.py (class Metrics)",
        "only pixels clear in the target; per image masked MAE/RMSE/PSNR, SAM degrees, SSIM of "
        "masked images averaged over clear pixels; nanmean over images",
        "AllClear's benchmark tables in protocol (clear-target masking)",
        "in data: AllClear's own dataset (multi-temporal, its own cloud/shadow masks) is not "
        "SEN12MS-CR or LuojiaSET; on the twin the target is clear everywhere, so this equals uncrtaints "
        "without NaN-skipping differences",
    ),
}


def check_protocol(name: str) -> str:
    """``name`` if it is a known protocol, else ``ValueError`` naming the choices."""
    if name not in PROTOCOL_SPECS:
        raise ValueError(f"unknown evaluation protocol {name!r}; choose from {', '.join(PROTOCOLS)}")
    return name
