"""The emotion reader's model: config, CNN and image processor.

This folder is flat with relative imports so that ``save_pretrained`` can copy it next to the
weights as Hub custom code (``trust_remote_code=True`` works without emoreply installed).
Importing it registers the classes with the Auto* factories, locally and for the Hub.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

from .configuration_emotion_cnn import EmotionCNNConfig
from .image_processing_emotion_cnn import (
    EmotionCNNImageProcessor,
    ImageTooLargeError,
    NoFaceError,
)
from .labels import DAILYDIALOG_TO_EMOTION, DISPLAY_NAMES, EMOTION_TO_DAILYDIALOG, EMOTIONS, check_emotion
from .modeling_emotion_cnn import EmotionCNNForImageClassification

AutoConfig.register(EmotionCNNConfig.model_type, EmotionCNNConfig, exist_ok=True)
AutoModelForImageClassification.register(EmotionCNNConfig, EmotionCNNForImageClassification, exist_ok=True)
AutoImageProcessor.register(EmotionCNNConfig, image_processor_classes={"pil": EmotionCNNImageProcessor}, exist_ok=True)

# Writes auto_map into config.json / preprocessor_config.json and copies these files on save.
EmotionCNNConfig.register_for_auto_class()
EmotionCNNForImageClassification.register_for_auto_class("AutoModelForImageClassification")
EmotionCNNImageProcessor.register_for_auto_class("AutoImageProcessor")

__all__ = [
    "DAILYDIALOG_TO_EMOTION",
    "DISPLAY_NAMES",
    "EMOTIONS",
    "EMOTION_TO_DAILYDIALOG",
    "EmotionCNNConfig",
    "EmotionCNNForImageClassification",
    "EmotionCNNImageProcessor",
    "ImageTooLargeError",
    "NoFaceError",
    "check_emotion",
]
