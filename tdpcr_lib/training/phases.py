"""The training phases and phase-2 trainable sets by name, apart from the training configuration
(which imports torch and pandas), so ``tdpcr train --help`` can list them without loading either."""

from __future__ import annotations

#: The phases a :class:`~tdpcr_lib.training.config.TrainConfig` can run.
PHASES: tuple[str, ...] = ("phase1", "phase2", "joint", "baseline")


#: Phase-2 trainable sets → the ``module_groups()`` that stay trainable (``None`` = all).
TRAINABLE_SETS: dict[str, tuple[str, ...] | None] = {
    "prompt_pgf_seg": ("prompt_generator", "pgf", "seg_decoder"),
    "seg_decoder_only": ("seg_decoder",),
    "all": None,
}
