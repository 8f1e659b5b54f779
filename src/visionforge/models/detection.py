"""Object detectors: torchvision's FCOS, RetinaNet and Faster R-CNN on any visionforge encoder.

The detector heads, box coding, matching, losses and NMS are torchvision's; this module
only builds the feature pyramid from a visionforge encoder (:class:`CNNBackbone`, timm
``features_only`` models, see :func:`~visionforge.models.backbones.create_encoder`) and
wires it to the detector, so every backbone of the registry can detect.

Conventions shared by the data layer, the engine and the exports:

- ``num_classes`` counts object classes (no background); labels are ``1..num_classes``
  (0 is torchvision's background index), ``class_names[label - 1]`` names a label.
- Input: a batch ``[B, 3, H, W]`` (or a list of ``[3, H, W]``) of RGB in ``[0, 1]``; the
  model normalises inside (ImageNet mean/std) and does **not** resize: the data layer
  already sized the images, and boxes come back in input pixel coordinates.
- ``model(images, targets)`` in train mode returns torchvision's loss dict; in eval mode a
  list of ``{"boxes" [N, 4] xyxy, "scores" [N], "labels" [N]}`` per image.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import (
    FeaturePyramidNetwork,
    LastLevelMaxPool,
    LastLevelP6P7,
)

from visionforge.models.backbones._pretrained import PretrainedArg
from visionforge.models.backbones.encoder import TimmFeatures, create_encoder
from visionforge.models.contract import IMAGENET_MEAN, IMAGENET_STD, UNIT_RANGE
from visionforge.models.factory import register_model
from visionforge.models.fcos_quality import QualityFCOSHead

__all__ = [
    "PyramidBackbone",
    "NoResizeTransform",
    "fcos",
    "retinanet",
    "faster_rcnn",
    "fcos_resnet18_lite",
    "float32_outputs",
    "DETECTION_CONTRACT",
]

#: RGB in [0, 1], any size: the detector normalises inside and keeps the input size.
DETECTION_CONTRACT = UNIT_RANGE

_TEST = {"backbone": "resnet18", "num_classes": 2, "fpn_channels": 32}


class PyramidBackbone(nn.Module):
    """An encoder's feature maps through torchvision's ``FeaturePyramidNetwork``.

    Args:
        encoder: a pyramid encoder (``forward`` returns maps high to low resolution and it
            exposes ``out_channels``/``strides``).
        levels: which encoder maps feed the FPN (indices into its list).
        out_channels: FPN width.
        extra: ``"p6p7"`` (FCOS, RetinaNet), ``"pool"`` (Faster R-CNN) or ``None``.
    """

    def __init__(
        self, encoder: nn.Module, levels: Sequence[int], out_channels: int, extra: str | None
    ) -> None:
        super().__init__()
        self.body = encoder
        self.levels = [int(i) for i in levels]
        in_channels = [int(encoder.out_channels[i]) for i in self.levels]
        blocks = {
            "p6p7": lambda: LastLevelP6P7(out_channels, out_channels),
            "pool": LastLevelMaxPool,
            None: lambda: None,
        }[extra]()
        self.fpn = FeaturePyramidNetwork(in_channels, out_channels, extra_blocks=blocks)
        self.out_channels = int(out_channels)
        base = [int(encoder.strides[i]) for i in self.levels]
        extra_strides = {"p6p7": [base[-1] * 2, base[-1] * 4], "pool": [base[-1] * 2], None: []}
        #: stride of every output map, in order
        self.strides: list[int] = base + extra_strides[extra]

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        feats = self.body(x)
        return self.fpn(OrderedDict((str(i), feats[lvl]) for i, lvl in enumerate(self.levels)))


class NoResizeTransform(GeneralizedRCNNTransform):
    """torchvision's detection transform minus the resize: it normalises and batches.

    The data layer (and the Predictor) already gives images their working size; resizing
    again inside would make boxes depend on a hidden min/max size. Written here because
    torchvision's ``_skip_resize`` only applies in training mode.
    """

    def __init__(self, min_side: int = 0, upscale: float = 1.0) -> None:
        super().__init__(min_size=1, max_size=1, image_mean=list(IMAGENET_MEAN),
                         image_std=list(IMAGENET_STD), size_divisible=32)
        #: batches are zero-padded to at least this side, so the coarsest pyramid map has
        #: 2 x 2 cells (GroupNorm in the heads fails on a single image with a 1 x 1 map)
        self.min_side = int(min_side)
        if not upscale > 0:
            raise ValueError(f"upscale must be > 0, got {upscale}")
        #: fixed zoom applied inside the model (1 = none); boxes come back in input pixels
        self.upscale = float(upscale)

    def resize(self, image: torch.Tensor, target: dict[str, torch.Tensor] | None = None
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        if self.upscale == 1.0:
            return image, target
        # a fixed factor, not a target size: small objects (nuclei of ~10 px) get more cells
        # of the finest pyramid map; torchvision's postprocess maps the boxes back to the
        # input size (image_sizes vs original sizes)
        image = torch.nn.functional.interpolate(image[None], scale_factor=self.upscale,
                                                mode="bilinear", align_corners=False)[0]
        if target is not None and "boxes" in target:
            target = {**target, "boxes": target["boxes"] * self.upscale}
        return image, target

    def batch_images(self, images: list[torch.Tensor], size_divisible: int = 32) -> torch.Tensor:
        batched = super().batch_images(images, size_divisible)
        h, w = batched.shape[-2:]
        pad_h, pad_w = max(self.min_side - int(h), 0), max(self.min_side - int(w), 0)
        if pad_h or pad_w:  # right/bottom padding: boxes keep their coordinates
            batched = torch.nn.functional.pad(batched, (0, pad_w, 0, pad_h))
        return batched


def _backbone(
    backbone: str, pretrained: PretrainedArg, in_chans: int, levels: Sequence[int] | None,
    fpn_channels: int, extra: str, encoder_kwargs: dict[str, Any] | None, default_levels: int = 3,
) -> PyramidBackbone:
    kwargs = dict(encoder_kwargs or {})
    if "out_indices" in kwargs:  # a truncated timm encoder: later stages are not even built
        encoder: nn.Module = TimmFeatures(backbone, pretrained=pretrained, in_chans=in_chans,
                                          **kwargs)
    else:
        encoder = create_encoder(backbone, pretrained=pretrained, in_chans=in_chans, **kwargs)
    n = len(encoder.out_channels)
    chosen = list(levels) if levels is not None else list(range(max(n - default_levels, 0), n))
    return PyramidBackbone(encoder, chosen, fpn_channels, extra)


def float32_outputs(module: nn.Module, inputs: Any, output: Any) -> Any:
    """Forward hook: the half-precision (bfloat16 / float16) tensors of ``output`` (a tensor,
    or dicts/lists/tuples of them) as float32; float32 and float64 outputs are left alone, so
    it does nothing outside autocast.

    torchvision's box coders cast the anchors (pixel coordinates) to the dtype of the head's
    regression output, so under bf16 autocast boxes are decoded in bfloat16: 8 significant
    bits, 0.5 px steps from 64 px and 2 px steps from 256 px, in the GIoU loss and in the
    returned detections alike. Hooked on the heads, the decode, losses and NMS run in
    float32 while the backbone and FPN keep the autocast dtype.
    """
    if isinstance(output, torch.Tensor):
        return output.float() if output.dtype in (torch.bfloat16, torch.float16) else output
    if isinstance(output, dict):
        return {k: float32_outputs(module, inputs, v) for k, v in output.items()}
    if isinstance(output, list | tuple):
        return type(output)(float32_outputs(module, inputs, v) for v in output)
    return output


def _heads(model: nn.Module) -> list[nn.Module]:
    """The modules whose outputs torchvision decodes into boxes (FCOS/RetinaNet head; RPN
    head and box predictor of Faster R-CNN)."""
    if isinstance(model, FasterRCNN):
        return [model.rpn.head, model.roi_heads.box_predictor]
    return [model.head]


def _finish(model: nn.Module, num_classes: int, backbone: PyramidBackbone,
            upscale: float = 1.0) -> nn.Module:
    model.transform = NoResizeTransform(min_side=2 * max(backbone.strides), upscale=upscale)
    model.num_classes = int(num_classes)  # object classes, background excluded
    for head in _heads(model):
        head.register_forward_hook(float32_outputs)
    return model


def _detector_kwargs(score_thresh: float, nms_thresh: float, detections_per_img: int) -> dict:
    # min/max size are required by the constructors; NoResizeTransform replaces the transform
    return {"min_size": 1, "max_size": 1, "score_thresh": score_thresh, "nms_thresh": nms_thresh,
            "detections_per_img": detections_per_img}


@register_model(
    "fcos",
    aliases=("FCOS",),
    task="detection",
    family="fcos",
    test_kwargs=_TEST,
    test_input=(3, 64, 64),
    description="FCOS (anchor-free) on any encoder + FPN (torchvision heads)",
    input_contract=DETECTION_CONTRACT,
    kind="cnn",
)
def fcos(
    backbone: str = "resnet50",
    num_classes: int = 1,
    in_chans: int = 3,
    pretrained: PretrainedArg = False,
    levels: Sequence[int] | None = None,
    fpn_channels: int = 256,
    head_convs: int = 4,
    score_thresh: float = 0.2,
    nms_thresh: float = 0.6,
    detections_per_img: int = 300,
    encoder_kwargs: dict[str, Any] | None = None,
    upscale: float = 1.0,
    center_sampling_radius: float = 1.5,
    extra_levels: bool = True,
    quality: str = "centerness",
) -> nn.Module:
    """torchvision ``FCOS`` on ``backbone`` (FPN over the last three encoder maps + P6/P7).

    Args:
        backbone: encoder name (``resnet18``..``resnet152``, a timm architecture).
        num_classes: object classes (background excluded).
        pretrained: encoder weights: ``False`` or a local file (``True`` needs a network).
        levels: encoder maps fed to the FPN (default: the last three).
        fpn_channels: FPN and head width.
        head_convs: conv layers in each head branch (torchvision default 4).
        score_thresh / nms_thresh / detections_per_img: post-processing.
        upscale: zoom applied inside the model before the encoder (boxes still come back in
            input pixels); 2 gives objects of ~10 px twice as many cells per side.
        center_sampling_radius: FCOS positives lie within this many strides of a box centre.
        extra_levels: add P6/P7 on top of the FPN (off: only the encoder's levels).
        quality: what the branch that multiplies the class score learns: ``"centerness"``
            (torchvision's) or ``"iou"``, the IoU of the cell's own box with its object
            (:mod:`visionforge.models.fcos_quality`).
    """
    extra = "p6p7" if extra_levels else None
    bb = _backbone(backbone, pretrained, in_chans, levels, fpn_channels, extra, encoder_kwargs)
    anchors = AnchorGenerator(tuple((s,) for s in bb.strides), ((1.0,),) * len(bb.strides))
    head = QualityFCOSHead(fpn_channels, 1, num_classes + 1, num_convs=head_convs,
                           quality=quality)
    model = FCOS(bb, num_classes + 1, anchor_generator=anchors, head=head,
                 center_sampling_radius=center_sampling_radius,
                 **_detector_kwargs(score_thresh, nms_thresh, detections_per_img))
    return _finish(model, num_classes, bb, upscale)


@register_model(
    "retinanet",
    aliases=("RetinaNet",),
    task="detection",
    family="retinanet",
    test_kwargs=_TEST,
    test_input=(3, 64, 64),
    description="RetinaNet on any encoder + FPN (torchvision heads, focal loss)",
    input_contract=DETECTION_CONTRACT,
    kind="cnn",
)
def retinanet(
    backbone: str = "resnet50",
    num_classes: int = 1,
    in_chans: int = 3,
    pretrained: PretrainedArg = False,
    levels: Sequence[int] | None = None,
    fpn_channels: int = 256,
    anchor_scale: float = 4.0,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_img: int = 300,
    encoder_kwargs: dict[str, Any] | None = None,
) -> nn.Module:
    """torchvision ``RetinaNet`` on ``backbone``; anchors ``anchor_scale * stride`` per level
    with three octave scales and aspect ratios 0.5/1/2 (torchvision's: scale 4)."""
    bb = _backbone(backbone, pretrained, in_chans, levels, fpn_channels, "p6p7", encoder_kwargs)
    sizes = tuple(tuple(int(round(anchor_scale * s * 2 ** (k / 3))) for k in range(3))
                  for s in bb.strides)
    anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    head = RetinaNetHead(fpn_channels, anchors.num_anchors_per_location()[0], num_classes + 1)
    model = RetinaNet(bb, num_classes + 1, anchor_generator=anchors, head=head,
                      **_detector_kwargs(score_thresh, nms_thresh, detections_per_img))
    return _finish(model, num_classes, bb)


@register_model(
    "faster_rcnn",
    aliases=("FasterRCNN", "fasterrcnn"),
    task="detection",
    family="faster_rcnn",
    test_kwargs={**_TEST, "representation_size": 64},
    test_input=(3, 64, 64),
    description="Faster R-CNN with FPN on any encoder (torchvision RPN + RoI heads)",
    input_contract=DETECTION_CONTRACT,
    kind="cnn",
)
def faster_rcnn(
    backbone: str = "resnet50",
    num_classes: int = 1,
    in_chans: int = 3,
    pretrained: PretrainedArg = False,
    levels: Sequence[int] | None = None,
    fpn_channels: int = 256,
    anchor_scale: float = 8.0,
    representation_size: int = 1024,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_img: int = 300,
    encoder_kwargs: dict[str, Any] | None = None,
) -> nn.Module:
    """torchvision ``FasterRCNN`` (FPN, RoIAlign over the FPN maps) on ``backbone``; RPN anchors
    ``anchor_scale * stride`` per level, aspect ratios 0.5/1/2 (torchvision's: scale 8)."""
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead

    # by default the last four maps: Faster R-CNN uses the stride-4 map too (as torchvision's)
    bb = _backbone(backbone, pretrained, in_chans, levels, fpn_channels, "pool",
                   encoder_kwargs, default_levels=4)
    sizes = tuple((int(anchor_scale * s),) for s in bb.strides)
    anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    names = [str(i) for i in range(len(bb.levels))]
    roi_pool = MultiScaleRoIAlign(featmap_names=names, output_size=7, sampling_ratio=2)
    box_head = TwoMLPHead(fpn_channels * 49, representation_size)
    kw = _detector_kwargs(score_thresh, nms_thresh, detections_per_img)
    model = FasterRCNN(
        bb, None, rpn_anchor_generator=anchors, box_roi_pool=roi_pool, box_head=box_head,
        box_predictor=FastRCNNPredictor(representation_size, num_classes + 1), min_size=1, max_size=1, box_score_thresh=kw["score_thresh"],
        box_nms_thresh=kw["nms_thresh"], box_detections_per_img=kw["detections_per_img"],
    )
    return _finish(model, num_classes, bb)


@register_model(
    "fcos_resnet18_lite",
    aliases=("fcos_lite",),
    task="detection",
    family="fcos",
    test_kwargs={"num_classes": 2},
    test_input=(3, 64, 64),
    description="small CPU detector: FCOS on ResNet-18, 64-wide FPN (strides 2-16), 2-conv heads",
    input_contract=DETECTION_CONTRACT.with_size((3, 256, 256)),
    kind="cnn",
)
def fcos_resnet18_lite(
    num_classes: int = 1,
    in_chans: int = 3,
    pretrained: PretrainedArg = False,
    score_thresh: float = 0.2,
    nms_thresh: float = 0.3,
    detections_per_img: int = 300,
    upscale: float = 1.0,
    finest_stride: int = 2,
    extra_levels: bool = True,
    center_sampling_radius: float = 1.5,
    quality: str = "centerness",
    head_convs: int = 2,
) -> nn.Module:
    """FCOS on ResNet-18 sized for small objects (nuclei, cells, coins at low resolution) and
    CPU training: ResNet-18 up to ``layer3`` (timm ``features_only``), FPN over the stride
    2/4/8/16 maps (P5/P6 on top), 64 channels, ``head_convs`` convs per head branch (3.19 M
    parameters with two, 3.26 M with three).

    ``head_convs=3`` is what the CLI's model config and the detection defaults use (IHC
    benchmark, five seeds: median test mAP@.5 0.635 -> 0.691, count error 0.100 -> 0.079, at
    ~1.2x the training time; docs/detection.md); the default here stays 2 so that model
    directories saved before record no ``head_convs`` and still load.

    ``finest_stride=2`` feeds the stem's stride-2 map to the FPN: FCOS puts objects whose
    largest box-edge distance is under 16 px there, so ~10 px nuclei are found on a 2 px grid
    instead of a 4 px one (IHC benchmark, one seed: test mAP@.5 0.55 -> 0.63,
    at ~1.75x the step time; docs/detection.md). ``finest_stride=4`` is the earlier model.
    ``upscale`` zooms the input inside the model (costly: 2 is ~5x the step time).
    NMS at IoU 0.3: small round objects rarely overlap more, and 0.5 left duplicates that
    over-counted (IHC count error per tile 0.26 -> 0.10, one seed each).
    ``quality="iou"``: see :func:`fcos` (IHC, five seeds: median test mAP@.5 0.635 -> 0.659,
    count error 0.100 -> 0.085, but seed by seed the mAP@.5 change is within noise)."""
    if finest_stride not in (2, 4):
        raise ValueError(f"finest_stride must be 2 or 4, got {finest_stride}")
    # timm resnet18 features: index 0 = stem (stride 2), 1..3 = layer1..3 (strides 4..16)
    indices = (0, 1, 2, 3) if finest_stride == 2 else (1, 2, 3)
    return fcos("resnet18", num_classes=num_classes, in_chans=in_chans, pretrained=pretrained,
                levels=tuple(range(len(indices))), fpn_channels=64, head_convs=head_convs,
                score_thresh=score_thresh, nms_thresh=nms_thresh,
                detections_per_img=detections_per_img, upscale=upscale,
                center_sampling_radius=center_sampling_radius, extra_levels=extra_levels,
                quality=quality, encoder_kwargs={"out_indices": indices})  # layer4 unused: not built
