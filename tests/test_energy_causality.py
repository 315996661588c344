"""How far ahead the energy of a grid time reads, and that detectors say so.

Each scored window gives the energy of the `stride` rows it ends with, so the score of a
row reads the readings up to the end of its stride: up to stride - 1 rows after it (15
hours for the tiny preset's 16-step patch on an hourly grid). That places a window's
evidence on the rows it describes (the point metrics read it so), but live the score
exists only once the stride is complete: `Detector.lookahead_rows` reports the stride - 1
rows, and the benchmark times alarms and events that much later (`evaluate.protocol`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geojepa.detectors.jepa import JepaDensity, JepaEnergy
from geojepa.detectors.reconstruction import Reconstruction
from geojepa.detectors.response import ResponseOnly
from geojepa.energy import EnergySpec, frame_energy
from geojepa.frame import SensorFrame
from geojepa.windows import Normaliser, WindowSpec
from test_edge import MeanEngine  # a numpy stand-in for the two graphs


def _frame(values: np.ndarray) -> SensorFrame:
    t, c = values.shape
    return SensorFrame(
        values.astype(np.float32),
        np.isfinite(values),
        pd.date_range("2024-01-01", periods=t, freq="h").to_numpy(),  # cell 0 mod 8: aligned
        pd.DataFrame({"id": [f"S{i}" for i in range(c)]}),
        pd.Timedelta("1h"),
    )


def test_the_energy_of_a_row_reads_to_the_end_of_its_stride_and_no_further() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).cumsum(axis=0)
    norm = Normaliser(("S0", "S1", "S2"), np.zeros(3), np.ones(3))
    window = WindowSpec(length=32, stride=8, patch=8)
    stride = EnergySpec().stride(window)
    before = frame_energy(MeanEngine(8), _frame(x), norm, window, EnergySpec())
    later = x.copy()
    later[63, 0] += 50.0  # the last row of the stride 56..63
    after = frame_energy(MeanEngine(8), _frame(later), norm, window, EnergySpec())
    np.testing.assert_array_equal(after[: 64 - stride], before[: 64 - stride])
    assert not np.allclose(after[64 - stride : 63], before[64 - stride : 63])  # read ahead


def test_block_scored_detectors_report_their_lookahead() -> None:
    window = WindowSpec(length=128, stride=32, patch=16)
    energy, density, recon = JepaEnergy(), JepaDensity(), Reconstruction()
    for d in (energy, density, recon):
        d.window_ = window  # as fit sets it from the run
    assert energy.lookahead_rows() == EnergySpec().stride(window) - 1
    assert recon.lookahead_rows() == EnergySpec().stride(window) - 1
    assert density.lookahead_rows() == window.patch - 1
    assert ResponseOnly(energy).lookahead_rows() == energy.lookahead_rows()
