"""Configuration of the emotion CNN: the single source of truth for its shape and labels."""

from __future__ import annotations

from transformers import PreTrainedConfig

from .labels import EMOTIONS


class EmotionCNNConfig(PreTrainedConfig):
    """Hyperparameters of :class:`EmotionCNNForImageClassification`.

    The defaults are the paper's final model (Table 2): three blocks of two 3x3 convs
    (20/40/80 channels), 2x2 max-pool and dropout, then FC 2880 -> 256 -> 7; 851,955 parameters.

    Args:
        image_size: side of the square grayscale input; must be divisible by 2**len(channels).
        num_channels: input channels (1: grayscale).
        channels: output channels of each conv block.
        hidden_size: width of the fully connected layer.
        conv_dropout: dropout after each block's max-pool.
        fc_dropout: dropout after the hidden fully connected layer.
        negative_slope: LeakyReLU slope.
        class_weights: per-class loss weights (normalised inverse frequency in training), or None.
        focal_gamma: 0 for (weighted) cross-entropy, > 0 for focal loss.
        test_time_flip: in eval mode, average the logits of the face and its mirror image.
        test_time_shift: in eval mode, also average 4 views shifted by this many pixels (up, down,
            left, right; 0: off). With ``test_time_flip``, 10 views in one batched pass.
    """

    model_type = "emotion_cnn"

    def __init__(
        self,
        image_size: int = 48,
        num_channels: int = 1,
        channels: list[int] | tuple[int, ...] = (20, 40, 80),
        hidden_size: int = 256,
        conv_dropout: float = 0.25,
        fc_dropout: float = 0.5,
        negative_slope: float = 0.01,
        class_weights: list[float] | None = None,
        focal_gamma: float = 0.0,
        test_time_flip: bool = True,
        test_time_shift: int = 0,
        **kwargs,
    ) -> None:
        if "id2label" not in kwargs and "num_labels" not in kwargs:
            kwargs["id2label"] = dict(enumerate(EMOTIONS))
        channels = [int(c) for c in channels]
        if not channels or any(c <= 0 for c in channels):
            raise ValueError(f"channels must be a non-empty list of positive ints, got {channels}")
        if image_size <= 0 or image_size % (2 ** len(channels)):
            raise ValueError(
                f"image_size ({image_size}) must be positive and divisible by 2**{len(channels)} "
                "(one 2x2 max-pool per block)"
            )
        for name, p in (("conv_dropout", conv_dropout), ("fc_dropout", fc_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        if hidden_size <= 0 or num_channels <= 0:
            raise ValueError("hidden_size and num_channels must be positive")
        if not 0 <= test_time_shift < image_size // 4:
            raise ValueError(f"test_time_shift must be in [0, {image_size // 4}) pixels, got {test_time_shift}")
        if focal_gamma < 0:
            raise ValueError(f"focal_gamma must be >= 0, got {focal_gamma}")
        self.image_size = image_size
        self.num_channels = num_channels
        self.channels = channels
        self.hidden_size = hidden_size
        self.conv_dropout = conv_dropout
        self.fc_dropout = fc_dropout
        self.negative_slope = negative_slope
        self.focal_gamma = focal_gamma
        self.test_time_flip = test_time_flip
        self.test_time_shift = int(test_time_shift)
        super().__init__(**kwargs)
        if class_weights is not None and len(class_weights) != self.num_labels:
            raise ValueError(f"class_weights has {len(class_weights)} entries but there are {self.num_labels} labels")
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]

    @property
    def flat_features(self) -> int:
        """Size of the flattened feature map entering the classifier (2880 for the defaults)."""
        side = self.image_size // 2 ** len(self.channels)
        return self.channels[-1] * side * side
