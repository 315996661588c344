"""Anomaly detectors: the contract (`Detector`, `DetectorScores`), the classic baselines and
density scores on any embedding matrix. Importing this package registers the baselines."""

from geojepa.detectors.base import (
    PLUGIN_MODULES,
    Detector,
    DetectorScores,
    SensorwiseDetector,
    available_detectors,
    make_detector,
    register_detector,
)
from geojepa.detectors.baselines import (
    Catch22Detector,
    RandomDetector,
    RateOfChange,
    RobustZ,
    TriggerLevels,
    WindowIsolationForest,
)
from geojepa.detectors.density import DENSITY_METHODS, EmbeddingDensity

__all__ = [
    "DENSITY_METHODS",
    "PLUGIN_MODULES",
    "Catch22Detector",
    "Detector",
    "DetectorScores",
    "EmbeddingDensity",
    "RandomDetector",
    "RateOfChange",
    "RobustZ",
    "SensorwiseDetector",
    "TriggerLevels",
    "WindowIsolationForest",
    "available_detectors",
    "make_detector",
    "register_detector",
]
