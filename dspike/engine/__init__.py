"""Training engine: config, the loop (:func:`fit`), checkpoints, torchrun helpers, tracker hooks."""

from .checkpoint import CheckpointError, RunLock, StopSignal, load_checkpoint, save_checkpoint
from .config import (
    ConfigError,
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    SurrogateConfig,
    TrainConfig,
)
from .factory import build_network, build_optimizer, build_scheduler
from .loop import PLOT_COLUMNS, FitResult, NonFiniteLossError, TrainingInterrupted, fit
from .tracker import NullTracker, Tracker

__all__ = [
    "PLOT_COLUMNS",
    "CheckpointError",
    "ConfigError",
    "DataConfig",
    "FitResult",
    "ModelConfig",
    "NonFiniteLossError",
    "NullTracker",
    "OptimConfig",
    "RunConfig",
    "RunLock",
    "StopSignal",
    "SurrogateConfig",
    "Tracker",
    "TrainConfig",
    "TrainingInterrupted",
    "build_network",
    "build_optimizer",
    "build_scheduler",
    "fit",
    "load_checkpoint",
    "save_checkpoint",
]
