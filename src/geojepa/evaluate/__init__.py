"""Evaluation: the §5 protocol for one detector (`protocol`), the benchmark harness over
cases and detectors (`benchmark`), and the sites it runs on (`sites`)."""

from geojepa.evaluate.benchmark import (
    BenchmarkResult,
    Case,
    SiteBuilder,
    kind_table,
    markdown_table,
    run_benchmark,
    summarise,
    write_benchmark,
)
from geojepa.evaluate.protocol import (
    ALL,
    DetectorResult,
    GroundTruth,
    LabelledEvent,
    Protocol,
    TimeSplit,
    calibrate_policy,
    evaluate_detector,
    evaluate_scores,
    ground_truth,
    select_sensors,
    sensor_events,
    time_split,
)

__all__ = [
    "ALL",
    "BenchmarkResult",
    "Case",
    "DetectorResult",
    "GroundTruth",
    "LabelledEvent",
    "Protocol",
    "SiteBuilder",
    "TimeSplit",
    "calibrate_policy",
    "evaluate_detector",
    "evaluate_scores",
    "ground_truth",
    "kind_table",
    "markdown_table",
    "run_benchmark",
    "select_sensors",
    "sensor_events",
    "summarise",
    "time_split",
    "write_benchmark",
]
