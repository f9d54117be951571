"""Scoring an evaluation's predictions under the field's named protocols, and reporting them.

:class:`ProtocolScoring` is handed to :func:`tdpcr_lib.inference.scoring.accumulate_metrics` as its
``on_batch`` hook: every predicted batch is scored under each requested protocol
(:mod:`tdpcr_lib.metrics.protocols`) as it passes, so no protocol runs the model again. The
``tdpcr`` protocol is read from the evaluation's own result frame (the same definitions), at no
cost. :func:`protocol_table` and :func:`protocol_markdown` print the values with the protocol, its
source and the published tables it is (and is not) comparable with; :func:`split_label` names
the data split behind the numbers (the leaky ``legacy-substring`` SEN12MS-CR split says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from torch.utils.data import Dataset

from tdpcr_lib.evaluation.tables import dataframe_to_markdown, readable
from tdpcr_lib.metrics.display import Shown
from tdpcr_lib.metrics.protocol_specs import DEFAULT_PROTOCOL, PROTOCOL_SPECS, check_protocol
from tdpcr_lib.metrics.protocols import ProtocolAccumulator
from tdpcr_lib.metrics.results import CR_METRICS, value

#: Column order of the protocol table.
PROTOCOL_COLUMNS: tuple[str, ...] = (*CR_METRICS, "sam_rad", "n_images")


class ProtocolScoring:
    """Scores predicted batches under named protocols (an ``on_batch`` hook).

    Parameters
    ----------
    protocols
        Names from :data:`tdpcr_lib.metrics.protocol_specs.PROTOCOLS` (duplicates dropped).
    dataset
        The evaluated dataset. For ``allclear``, its ``target_clear_mask(target)`` (when it has
        one) gives the pixels clear in the target; otherwise the target is taken as clear
        everywhere, and the result says so.
    """

    def __init__(self, protocols: Sequence[str], dataset: Dataset | None = None) -> None:
        self.protocols = list(dict.fromkeys(check_protocol(p) for p in protocols))
        self._clear_mask = getattr(dataset, "target_clear_mask", None)
        self._accumulators = {p: ProtocolAccumulator(p) for p in self.protocols if p != DEFAULT_PROTOCOL}

    def __call__(self, outputs: dict[str, Any], batch: dict[str, Any]) -> None:
        if not self._accumulators:
            return
        prediction = outputs["reconstruction"].detach().float()
        target = batch["target"].detach().float().to(prediction.device)
        for name, accumulator in self._accumulators.items():
            valid = None
            if name == "allclear" and self._clear_mask is not None:
                valid = self._clear_mask(target)
            accumulator.update(prediction, target, valid)

    def results(self, frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
        """``{protocol: {metric: value, "n_images": n, "note": ...}}`` in the requested order."""
        out: dict[str, dict[str, Any]] = {}
        for name in self.protocols:
            if name == DEFAULT_PROTOCOL:
                values: dict[str, Any] = {m: value(frame, m) for m in CR_METRICS}
                values["n_images"] = int(value(frame, "n_images"))
            else:
                accumulator = self._accumulators[name]
                values = {**accumulator.compute(), "n_images": accumulator.n_images}
            if name == "allclear":
                values["note"] = (
                    "clear target pixels from the dataset's cloud mask of the target"
                    if self._clear_mask is not None
                    else "the dataset has no target cloud mask: every target pixel counts as clear"
                )
            out[name] = values
        return out


def split_label(dataset: Dataset) -> str | None:
    """The named data split behind the numbers (``split_config.json``'s ``split_protocol``)."""
    try:
        config = getattr(dataset, "split_config", None)
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    return config.get("split_protocol")


def split_warning(label: str | None) -> str | None:
    """A sentence for every report when the split leaks scenes between splits, else None."""
    if label != "legacy-substring":
        return None
    return (
        "**Leaky split:** these numbers come from the `legacy-substring` SEN12MS-CR split "
        "(the peers' substring match: training also holds 6 of the 10 test scenes and 3 "
        "validation scenes). They measure how much that leak inflates published numbers; they "
        "are not a clean test result (docs/dataset.md)."
    )


def protocol_table(protocols: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per protocol, the metrics as columns (``sam_rad`` only where defined)."""
    rows = {name: {c: values.get(c) for c in PROTOCOL_COLUMNS} for name, values in protocols.items()}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(PROTOCOL_COLUMNS))
    table.index.name = "protocol"
    table["n_images"] = table["n_images"].astype("Int64")
    if table["sam_rad"].isna().all():
        table = table.drop(columns="sam_rad")
    return table


#: MAE/RMSE are on each protocol's own scale (reflectance, or DN/2000 for ``dsen2cr``).
PROTOCOL_SHOWN: dict[str, Shown] = {
    "mae": Shown("MAE (protocol's scale)", 1.0, 4),
    "rmse": Shown("RMSE (protocol's scale)", 1.0, 4),
}


def protocol_display(protocols: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """:func:`protocol_table` for people: headings with units, rounded (:func:`readable`)."""
    return readable(protocol_table(protocols), PROTOCOL_SHOWN)


def protocol_markdown(protocols: dict[str, dict[str, Any]] | None) -> list[str]:
    """The protocol table and one "comparable with" line per protocol, as markdown lines."""
    if not protocols:
        return []
    lines = [
        "## Cloud removal under named protocols",
        "",
        "The same predictions scored under each protocol (`tdpcr evaluate --protocol`; "
        "definitions side by side in docs/metrics.md). PSNR in dB, SAM in degrees "
        "(`sam_rad`: radians, as DSen2-CR's code); `dsen2cr` MAE/RMSE are on DN/2000.",
        "",
        dataframe_to_markdown(protocol_display(protocols)),
        "",
    ]
    for name, values in protocols.items():
        spec = PROTOCOL_SPECS[name]
        lines.append(
            f"- **{name}** ({spec.title}; {spec.source}): comparable with "
            f"{spec.comparable_with}. Differs: {spec.not_comparable_with}."
        )
        if values.get("note"):
            lines.append(f"  Note: {values['note']}.")
    return lines + [""]
