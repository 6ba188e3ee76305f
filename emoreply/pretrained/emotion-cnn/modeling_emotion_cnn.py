"""The emotion CNN (paper, Table 2) as a transformers ``PreTrainedModel``."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from transformers import PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput

from .configuration_emotion_cnn import EmotionCNNConfig


class ConvBlock(nn.Module):
    """(conv3x3 -> BN -> LeakyReLU) x2 -> maxpool 2x2 -> dropout: halves the spatial side."""

    def __init__(self, in_channels: int, out_channels: int, config: EmotionCNNConfig) -> None:
        super().__init__()
        # Conv biases are redundant before BatchNorm, but the paper's 851k count includes them.
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(config.negative_slope),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(config.negative_slope),
            nn.MaxPool2d(2),
            nn.Dropout(config.conv_dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def fold_batchnorm(self) -> None:
        """Fold each (eval-mode) BatchNorm into the conv before it: same outputs, two ops fewer."""
        layers = self.layers
        for i in range(len(layers) - 1):
            if isinstance(layers[i], nn.Conv2d) and isinstance(layers[i + 1], nn.BatchNorm2d):
                layers[i] = fuse_conv_bn_eval(layers[i], layers[i + 1])
                layers[i + 1] = nn.Identity()


def class_weighted_loss(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None, gamma: float
) -> torch.Tensor:
    """Weighted cross-entropy, or focal loss when ``gamma > 0`` (Lin et al. 2017)."""
    if gamma == 0:
        return F.cross_entropy(logits, labels, weight=weights)
    log_p = F.log_softmax(logits, dim=-1).gather(1, labels[:, None]).squeeze(1)  # (B,)
    loss = -((1 - log_p.exp()) ** gamma) * log_p
    if weights is None:
        return loss.mean()
    w = weights[labels]
    return (w * loss).sum() / w.sum()  # same normalisation as F.cross_entropy(weight=...)


class EmotionCNNPreTrainedModel(PreTrainedModel):
    config_class = EmotionCNNConfig
    base_model_prefix = "emotion_cnn"
    main_input_name = "pixel_values"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # transformers 5 calls this for every module of a fresh model. Kaiming init suits the
        # LeakyReLU convs; small linear weights keep the initial logits near zero (loss ~ ln 7).
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, a=self.config.negative_slope, nonlinearity="leaky_relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.01)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            if module.running_mean is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
                module.num_batches_tracked.zero_()


class EmotionCNNForImageClassification(EmotionCNNPreTrainedModel):
    """48x48 grayscale face -> logits over the 7 emotions."""

    def __init__(self, config: EmotionCNNConfig) -> None:
        super().__init__(config)
        widths = [config.num_channels, *config.channels]
        blocks = [ConvBlock(c_in, c_out, config) for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)]
        self.features = nn.Sequential(*blocks)  # (B, 1, 48, 48) -> (B, 80, 6, 6)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(config.flat_features, config.hidden_size),
            nn.LeakyReLU(config.negative_slope),
            nn.Dropout(config.fc_dropout),
            nn.Linear(config.hidden_size, config.num_labels),
        )
        weights = torch.tensor(config.class_weights) if config.class_weights else torch.empty(0)
        # A buffer so the weights follow .to(device); not persistent: the config is their source.
        self.register_buffer("class_weights", weights, persistent=False)
        self.post_init()

    def _test_time_views(self, pixel_values: torch.Tensor, flip: bool, shift: int) -> list[torch.Tensor]:
        """The face, copies shifted by ``shift`` pixels and, with ``flip``, the mirror images of all.

        Faces are left-right symmetric in meaning, and a detector's box is off by a pixel or two,
        so averaging these views is a steadier estimate than any one of them.
        """
        views, s = [pixel_values], shift
        if s:
            h, w = pixel_values.shape[-2:]
            padded = F.pad(pixel_values, (s, s, s, s), mode="replicate")  # (B, 1, H + 2s, W + 2s)
            for dy, dx in ((s, 0), (-s, 0), (0, s), (0, -s)):
                views.append(padded[..., s + dy : s + dy + h, s + dx : s + dx + w])
        if flip:
            views += [v.flip(-1) for v in views]
        return views

    def fused_for_inference(self) -> EmotionCNNForImageClassification:
        """An eval-only copy with BatchNorm folded into the convs, in channels_last memory.

        The same logits (to float rounding) at about half the CPU time per face: the six BatchNorms
        vanish and oneDNN runs channels_last convs without reordering (bench/bench_emotion.py).
        Not for training or saving (the BatchNorm weights are gone); it shares this model's config,
        and with it the test-time views it uses by default.
        """
        fused = copy.deepcopy(self).eval()
        fused.config = self.config
        for block in fused.features:
            block.fold_batchnorm()
        return fused.to(memory_format=torch.channels_last)

    def _logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(pixel_values))  # (B, 7)

    def forward(
        self,
        pixel_values: torch.Tensor,  # (B, 1, 48, 48), normalised
        labels: torch.Tensor | None = None,  # (B,) class ids
        return_dict: bool | None = None,
        test_time_flip: bool | None = None,
        test_time_shift: int | None = None,
        **kwargs,
    ) -> ImageClassifierOutput | tuple:
        """Logits (and the loss, given ``labels``). In eval mode the logits are the mean over the test-time
        views: ``test_time_flip`` and ``test_time_shift`` choose them for this call (None: the config's)."""
        if self.training:
            views = [pixel_values]
        else:
            flip = self.config.test_time_flip if test_time_flip is None else test_time_flip
            shift = self.config.test_time_shift if test_time_shift is None else test_time_shift
            views = self._test_time_views(pixel_values, flip, shift)
        if len(views) > 1:  # one batched pass over all views, then the mean of their logits
            logits = self._logits(torch.cat(views)).view(len(views), -1, self.config.num_labels).mean(0)
        else:
            logits = self._logits(pixel_values)
        loss = None
        if labels is not None:
            weights = self.class_weights if self.class_weights.numel() else None
            loss = class_weighted_loss(logits, labels, weights, self.config.focal_gamma)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if not return_dict:
            return (logits,) if loss is None else (loss, logits)
        return ImageClassifierOutput(loss=loss, logits=logits)
