"""Transfer check: what a (twin-trained) model does to the real cloudy samples that ship with tdpcr.

For each SEN12MS-CR sample crop (:func:`tdpcr_lib.evaluation.fidelity.sen12mscr_sample_tiles`)
the PSNR of the cloudy input and of the model's prediction against the clear image is measured
(whole image, reflectance = DN / 10000 clipped to [0, 1], as every PSNR of tdpcr). The model is
run twice per sample:

* ``as is``: the files' DN, as ``tdpcr predict`` would read them. SEN12MS-CR predates the +1000
  DN offset that the LuojiaSET tiles (and the twin) carry, so every band looks 0.1 darker to a model
  trained on them;
* ``offset added``: +1000 DN before normalisation, so the input's convention matches the training
  data's; the prediction is compared after removing the offset again.

The cloudy input's PSNR is the "do nothing" baseline: a model that helps beats it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from tdpcr_lib.core.normalisation import load_normalisation
from tdpcr_lib.evaluation.fidelity import sen12mscr_sample_tiles
from tdpcr_lib.evaluation.tables import dataframe_to_markdown, readable
from tdpcr_lib.inference.domain import domain_check, input_statistics
from tdpcr_lib.metrics.display import Shown
from tdpcr_lib.metrics.functional import psnr

#: The DN offset of processing baseline >= 04.00 (LuojiaSET-OSFCR, the twin).
TRAINING_DN_OFFSET = 1000.0


def _psnr(a_dn: np.ndarray, b_dn: np.ndarray) -> float:
    a = torch.from_numpy(np.clip(a_dn / 10000.0, 0, 1)[None].astype(np.float32))
    b = torch.from_numpy(np.clip(b_dn / 10000.0, 0, 1)[None].astype(np.float32))
    return round(float(psnr(a, b)[0]), 3)


@torch.no_grad()
def _predict_dn(model: nn.Module, cloudy_dn: np.ndarray, s1_db: np.ndarray) -> np.ndarray:
    norm = load_normalisation()
    optical = torch.from_numpy(norm.s2_to_unit(cloudy_dn)[None].astype(np.float32))
    sar = torch.from_numpy(norm.s1_to_unit(s1_db)[None].astype(np.float32))
    device = next(model.parameters()).device
    out = model(optical.to(device), sar.to(device))["reconstruction"][0].float().cpu().numpy()
    return norm.s2_to_dn(out)


def transfer_check(
    model: nn.Module, training_data: dict[str, Any] | None = None
) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Apply ``model`` to the shipped real cloudy samples.

    Parameters
    ----------
    model
        A tdpcr model in eval mode (``model(optical, sar) -> {"reconstruction": ...}``).
    training_data
        The checkpoint's ``training_data`` (for the domain warning column), if recorded.

    Returns
    -------
    table : DataFrame
        One row per sample: ``cloud_fraction``, ``psnr_cloudy``, ``psnr_prediction_as_is``,
        ``psnr_prediction_offset_added``, the gains over the cloudy input, and
        ``domain_warning`` (the one-line warning :mod:`tdpcr_lib.inference.domain` gives for
        the sample's files, empty if none).
    images : dict
        Per sample, ``cloudy``, ``clear``, ``prediction_as_is`` and ``prediction_offset_added``
        in DN (no offset), for the figure.
    """
    was_training = model.training
    model.eval()
    rows, images = [], {}
    try:
        for tile in sen12mscr_sample_tiles():
            cloudy = tile["s2_cloudy"].astype(np.float32)
            clear = tile["s2"].astype(np.float32)
            s1 = tile["s1"].astype(np.float32)
            as_is = _predict_dn(model, cloudy, s1)
            shifted = _predict_dn(model, cloudy + TRAINING_DN_OFFSET, s1) - TRAINING_DN_OFFSET
            # judged as `tdpcr predict` feeds the sample: it reads the offset-free content as 0 DN
            # and adds the training data's offset
            observed = input_statistics(tile["paths"]["s2_cloudy"], tile["paths"]["s1"], TRAINING_DN_OFFSET)
            check = domain_check(training_data, observed, synthetic_input=False)
            row = {
                "sample": tile["name"],
                "cloud_fraction": round(float(tile["cloud_mask"].mean()), 3),
                "psnr_cloudy": _psnr(cloudy, clear),
                "psnr_prediction_as_is": _psnr(as_is, clear),
                "psnr_prediction_offset_added": _psnr(shifted, clear),
            }
            row["gain_as_is"] = round(row["psnr_prediction_as_is"] - row["psnr_cloudy"], 3)
            row["gain_offset_added"] = round(row["psnr_prediction_offset_added"] - row["psnr_cloudy"], 3)
            row["domain_warning"] = check["warning"] or ""
            rows.append(row)
            images[tile["name"]] = {
                "cloudy": cloudy,
                "clear": clear,
                "prediction_as_is": as_is,
                "prediction_offset_added": shifted,
            }
    finally:
        model.train(was_training)
    return pd.DataFrame(rows).set_index("sample"), images


#: How :func:`transfer_check`'s columns are shown (headings with units, decimals).
TRANSFER_SHOWN: dict[str, Shown] = {
    "cloud_fraction": Shown("cloud cover (%)", 100.0, 1),
    "psnr_cloudy": Shown("PSNR cloudy input (dB)", 1.0, 2),
    "psnr_prediction_as_is": Shown("PSNR prediction, as is (dB)", 1.0, 2),
    "gain_as_is": Shown("gain, as is (dB)", 1.0, 2),
    "psnr_prediction_offset_added": Shown("PSNR prediction, +1000 DN (dB)", 1.0, 2),
    "gain_offset_added": Shown("gain, +1000 DN (dB)", 1.0, 2),
}


def transfer_display(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`transfer_check`'s table for people: headings with units, rounded, columns in
    reading order; the domain warning is left out (too long for a cell): notebook 03 and
    :func:`transfer_markdown` give it one line per sample."""
    return readable(table[[c for c in TRANSFER_SHOWN if c in table.columns]], TRANSFER_SHOWN)


def domain_warnings(table: pd.DataFrame) -> list[str]:
    """The distinct domain warnings of :func:`transfer_check`'s rows (``tdpcr predict``'s)."""
    return sorted({w for w in table.get("domain_warning", []) if w})


def transfer_markdown(table: pd.DataFrame, checkpoint: str, figure: str | None = None) -> str:
    """``reports/transfer_check.md``: the table, what it means and the domain warning."""
    lines = [
        "# Transfer check: the model on real cloudy samples",
        "",
        f"Checkpoint `{checkpoint}` applied to the real SEN12MS-CR samples that ship with "
        "tdpcr (CC-BY 4.0; `tdpcr_lib/resources/real_samples/ATTRIBUTION.md`). PSNR (dB) of "
        "the cloudy input and of the prediction against the clear image of another date, "
        "whole image; a gain < 0 means the model damaged the image. A gain > 0 is necessary, "
        "not sufficient: whole-image PSNR also rewards a prediction that only moves the mean "
        "brightness towards the clear image (a saturated white or a dark, flat image can gain dB "
        "over a dark cloudy input; SSIM averaged over the bands does not catch it either), so "
        "judge the figure. `as is`: the files' DN (no +1000 offset); `offset added`: +1000 DN as in the "
        "training data. Two small crops: an indication, not a benchmark.",
        "",
        dataframe_to_markdown(transfer_display(table)),
    ]
    if domain_warnings(table):  # one line per sample: joined, two samples' warnings ran together
        lines += ["", "Domain check (what `tdpcr predict` warns for each sample):", ""]
        lines += [f"- `{sample}`: {row.get('domain_warning') or 'no warning'}" for sample, row in table.iterrows()]
    else:
        lines += ["", "Domain check: no warning for these files."]
    if figure:
        lines += ["", f"![transfer check]({figure})"]
    return "\n".join(lines) + "\n"
