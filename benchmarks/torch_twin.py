"""The PyTorch twin of jaxreid's main-job train step, for benchmarks/cpu_vs_torch.py.

torchvision's ResNet18/50 topology (written out: torchvision is not a dependency) at any
first-stage width, the BNNeck head of `jaxreid.models.bnneck` (BatchNorm without shift,
dropout, bias-free classifier), softmax cross-entropy on the logits + the weighted regularised
triplet (`jaxreid.losses.weighted_regularized_triplet`, the same formula) on the pooled
features with the config's mining, and SGD with Nesterov momentum and coupled weight decay on
convolution and linear kernels only, as `jaxreid.training.optimizers` (constant learning rate:
the schedule costs nothing measurable). The main job's AGW components follow the config:
a modality-specific stem (config.model.shared_from='layer1': conv1 + bn1 per modality, each
image through its own modality's copy only, as a PyTorch user indexes the rows), learnable GeM
pooling (config.model.pooling='gem', clamp 1e-6) and label smoothing.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class Basic(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, planes, 3, stride, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, 1, 1, bias=False),
            nn.BatchNorm2d(planes),
        )
        self.short = _shortcut(cin, planes, stride)

    def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))


class Bottle(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, planes, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, stride, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes * 4, 1, bias=False),
            nn.BatchNorm2d(planes * 4),
        )
        self.short = _shortcut(cin, planes * 4, stride)

    def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))


def _stem(width: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width))


class GeM(nn.Module):
    """Generalised-mean pooling with a learnable exponent (jaxreid.models.pooling.gem)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))

    def forward(self, x):
        return x.clamp_min(1e-6).pow(self.p).mean((2, 3)).pow(1.0 / self.p)


class BNNeckNet(nn.Module):
    """ResNet backbone -> pooled -> BN (no shift) -> dropout -> bias-free classifier."""

    def __init__(
        self,
        backbone: str,
        width: int,
        num_classes: int,
        dropout: float,
        streams: int = 1,
        gem_p: float | None = None,
    ):
        super().__init__()
        block, sizes = {"resnet18": (Basic, (2, 2, 2, 2)), "resnet50": (Bottle, (3, 4, 6, 3))}[
            backbone
        ]
        self.stems = nn.ModuleList(_stem(width) for _ in range(streams))
        layers = [nn.MaxPool2d(3, 2, 1)]
        cin = width
        for i, n in enumerate(sizes):
            for j in range(n):
                layers.append(block(cin, width * 2**i, 2 if i > 0 and j == 0 else 1))
                cin = width * 2**i * block.expansion
        self.backbone = nn.Sequential(*layers)
        self.pool = GeM(gem_p) if gem_p else nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.neck = nn.BatchNorm1d(cin)
        self.neck.bias.requires_grad_(False)  # Luo et al. 2019: the BNNeck has no shift.
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(cin, num_classes, bias=False)

    def forward(self, x, modality):
        if len(self.stems) == 1:
            x = self.stems[0](x)
        else:  # Each image through its modality's stem; BN statistics per modality.
            rows = [modality == m for m in range(len(self.stems))]
            parts = [stem(x[r]) for stem, r in zip(self.stems, rows)]
            out = parts[0].new_empty((x.shape[0], *parts[0].shape[1:]))
            for r, part in zip(rows, parts):
                out[r] = part
            x = out
        pooled = self.pool(self.backbone(torch.relu(x)))
        return pooled, self.classifier(self.dropout(self.neck(pooled)))


def weighted_regularized_triplet(x, labels, modalities, cross_modal: bool):
    """jaxreid.losses.weighted_regularized_triplet, in torch (same differences form)."""
    n = labels.shape[0]
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(n, dtype=torch.bool)
    negative = ~same
    if cross_modal:
        other = modalities[:, None] != modalities[None, :]
        positive, negative = positive & other, negative & other
    dist = torch.linalg.vector_norm(x[:, None, :] - x[None, :, :], dim=-1)

    def weighted(logits, mask):
        top = logits.masked_fill(~mask, -torch.inf).amax(1, keepdim=True).detach()
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        e = torch.exp(torch.where(mask, logits - top, torch.zeros_like(logits))) * mask
        w = e / e.sum(1, keepdim=True).clamp_min(1e-30)
        return (w * dist).sum(1)

    per_anchor = nn.functional.softplus(weighted(dist, positive) - weighted(-dist, negative))
    valid = positive.any(1) & negative.any(1)
    return (per_anchor * valid).sum() / valid.sum().clamp_min(1)


def runner(backbone: str, width: int, num_classes: int, batch: dict, config, channels_last: bool):
    """run(n): n train steps of the twin on the fixed `batch` (numpy, NHWC images)."""
    model = BNNeckNet(
        backbone,
        width,
        num_classes,
        config.model.dropout_rate,
        streams=len(config.data.modalities) if config.model.shared_from else 1,
        gem_p=config.model.gem_p if config.model.pooling == "gem" else None,
    )
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format).train()
    decayed = [p for p in model.parameters() if p.ndim > 1 and p.requires_grad]
    others = [p for p in model.parameters() if p.ndim <= 1 and p.requires_grad]
    optimizer = torch.optim.SGD(
        [
            {"params": decayed, "weight_decay": config.optim.weight_decay},
            {"params": others, "weight_decay": 0.0},
        ],
        lr=config.optim.learning_rate,
        momentum=config.optim.momentum,
        nesterov=True,
    )
    x = torch.from_numpy(np.ascontiguousarray(batch["image"].transpose(0, 3, 1, 2)))
    x = x.contiguous(memory_format=memory_format)
    y = torch.from_numpy(batch["label"]).long()
    modality = torch.from_numpy(batch["modality"]).long()
    parts = config.loss.name.split("+")
    cross_modal = config.loss.mining == "cross_modal"

    def run(n: int) -> None:
        for _ in range(n):
            optimizer.zero_grad(set_to_none=True)
            pooled, logits = model(x, modality)
            loss = nn.functional.cross_entropy(
                logits, y, label_smoothing=config.loss.label_smoothing
            )
            if "wrt" in parts:
                loss = loss + config.loss.metric_weight * weighted_regularized_triplet(
                    pooled, y, modality, cross_modal
                )
            loss.backward()
            optimizer.step()

    run(1)  # Warm-up (oneDNN primitive creation).
    return run
