"""Training FLOPs: ``FlopCounterMode`` with grouped convolutions' weight gradients counted right.

Used by ``model_throughput`` (training FLOP/s of every model) and ``training_step``.
"""

from __future__ import annotations

from typing import Any

#: How training FLOPs are counted (here and in ``model_throughput``).
TRAINING_FLOP_METHOD = (
    "torch.utils.flop_counter.FlopCounterMode over forward + loss + backward (2 FLOPs per "
    "multiply-add; convolutions and matrix products, element-wise ops not counted), with the "
    "weight gradient of a grouped convolution counted as its forward FLOPs: torch's formula "
    "ignores groups and counts a depthwise convolution's weight gradient channels-times over"
)


def _conv_backward_flops(
    grad_out_shape,
    x_shape,
    w_shape,
    _bias,
    _stride,
    _padding,
    _dilation,
    transposed,
    _output_padding,
    _groups,
    output_mask,
    out_shape=None,
    **kwargs,
) -> int:
    """Input gradient and weight gradient each cost the forward convolution's FLOPs."""
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def flop_counter(fix_grouped: bool = True):
    """A ``FlopCounterMode`` whose convolution backward counts grouped convolutions right."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    mapping = {torch.ops.aten.convolution_backward: _conv_backward_flops} if fix_grouped else {}
    return FlopCounterMode(display=False, custom_mapping=mapping)


def training_flops_per_sample(model, batch: dict[str, Any], fix_grouped: bool = True) -> float:
    """FLOPs of one forward + backward of ``model`` with ``L_rec`` on ``batch``, per sample."""
    from tdpcr_lib.losses import reconstruction_loss

    model.train()
    with flop_counter(fix_grouped) as counter:
        outputs = model(batch["optical"], batch["sar"])
        loss, _ = reconstruction_loss(outputs["reconstruction"], batch["target"])
        loss.backward()
    return counter.get_total_flops() / batch["optical"].shape[0]
