"""Windows, robust normalisation, sensor codes and time codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import synthetic_frame
from geojepa.codes import (
    N_SENSOR_FEATS,
    N_TIME_FEATS,
    group_code,
    sensor_features,
    sensor_info,
    time_features,
    unit_family,
)
from geojepa.errors import InputError
from geojepa.frame import SensorFrame
from geojepa.site import SENSOR_KINDS
from geojepa.windows import Normaliser, WindowDataset, WindowSpec, window_at


def _permuted(frame: SensorFrame, perm: np.ndarray) -> SensorFrame:
    return SensorFrame(
        values=frame.values[:, perm],
        observed=frame.observed[:, perm],
        time=frame.time,
        sensors=frame.sensors.iloc[perm].reset_index(drop=True),
        interval=frame.interval,
    )


def test_normaliser_sees_only_rows_before_end() -> None:
    frame = synthetic_frame(6, 600, seed=1)
    a = Normaliser.fit(frame, end=300)
    changed = frame.values.copy()
    changed[300:] = 1e6  # wild values after the fitting period
    frame2 = SensorFrame(changed, frame.observed, frame.time, frame.sensors, frame.interval)
    b = Normaliser.fit(frame2, end=300)
    np.testing.assert_array_equal(a.center, b.center)
    np.testing.assert_array_equal(a.scale, b.scale)
    c = Normaliser.fit(frame2)
    assert not np.allclose(a.center, c.center)


def test_normaliser_robust_and_floors() -> None:
    frame = synthetic_frame(3, 400, seed=2, missing=0.0)
    vals = frame.values.copy()
    vals[:, 0] = 0.0  # constant sensor: IQR and std are 0 -> scale 1
    vals[:, 1] = np.where(np.arange(400) % 50 == 0, 5.0, 0.0)  # mostly zero, like rain
    vals[10, 2] = 1e5  # one wild reading barely moves a median / IQR
    frame = SensorFrame(vals, frame.observed, frame.time, frame.sensors, frame.interval)
    n = Normaliser.fit(frame)
    assert n.scale[0] == 1.0 and n.center[0] == 0.0
    assert 0.1 < n.scale[1] < 5.0  # std fallback, not 0
    z = n.transform(frame)
    assert np.isfinite(z).all()
    assert np.abs(z).max() <= n.clip
    clean = np.delete(vals[:, 2], 10)
    assert abs(n.center[2] - np.median(clean)) < 0.5


def test_normaliser_transform_zero_where_missing_and_matches_by_id() -> None:
    frame = synthetic_frame(5, 300, seed=3, missing=0.2)
    n = Normaliser.fit(frame)
    z = n.transform(frame)
    assert z.dtype == np.float32
    assert (z[~frame.observed] == 0.0).all()
    perm = np.array([4, 2, 0, 1, 3])
    zp = n.transform(_permuted(frame, perm))
    np.testing.assert_array_equal(zp, z[:, perm])


def test_normaliser_roundtrip_json_and_unknown_sensor() -> None:
    frame = synthetic_frame(4, 200, seed=4)
    n = Normaliser.fit(frame)
    back = Normaliser.from_dict(json.loads(json.dumps(n.to_dict())))
    np.testing.assert_array_equal(back.transform(frame), n.transform(frame))
    other = frame.sensors.copy()
    other.loc[0, "id"] = "NEW"
    frame2 = SensorFrame(frame.values, frame.observed, frame.time, other, frame.interval)
    with pytest.raises(InputError, match="NEW"):
        n.transform(frame2)
    bad = n.to_dict()
    bad["scale"][0] = 0.0
    with pytest.raises(InputError):
        Normaliser.from_dict(bad)


def test_windowspec_rejects_bad_geometry() -> None:
    with pytest.raises(InputError, match="multiple"):
        WindowSpec(length=100, patch=16)
    with pytest.raises(InputError):
        WindowSpec(stride=0)
    with pytest.raises(InputError):
        WindowSpec(scales=(0,))
    with pytest.raises(InputError, match="unknown"):
        WindowSpec.from_dict({"length": 64, "lenght": 3})
    assert WindowSpec.from_dict(WindowSpec(scales=(1, 4)).to_dict()) == WindowSpec(scales=(1, 4))


def test_dataset_stays_inside_range_and_counts_skips() -> None:
    frame = synthetic_frame(4, 1000, seed=5, missing=0.0)
    obs = frame.observed.copy()
    obs[400:600] = False  # a long outage
    vals = np.where(obs, frame.values, np.nan).astype(np.float32)
    frame = SensorFrame(vals, obs, frame.time, frame.sensors, frame.interval)
    spec = WindowSpec(length=64, stride=16, patch=16, min_observed=0.5)
    n = Normaliser.fit(frame, 800)
    ds = WindowDataset(frame, n, spec, start=100, end=800)
    assert len(ds) > 0 and ds.skipped > 0
    assert (ds.starts >= 100).all() and (ds.starts + 64 <= 800).all()
    for i in range(len(ds)):
        assert ds[i].observed_fraction >= 0.5
    w = ds[3]
    assert w.values.shape == (4, 64) and w.observed.shape == (4, 64)
    assert w.sensor_feats.shape == (4, N_SENSOR_FEATS)
    assert w.time_feats.shape == (4, N_TIME_FEATS)
    z = n.transform(frame)
    np.testing.assert_array_equal(w.values, z[w.start : w.start + 64].T)


def test_multiscale_windows_average_grid_steps() -> None:
    frame = synthetic_frame(3, 2000, seed=6, missing=0.1)
    spec = WindowSpec(length=64, stride=32, patch=16, scales=(1, 4))
    n = Normaliser.fit(frame)
    ds = WindowDataset(frame, n, spec)
    assert set(ds.scales_of.tolist()) == {1, 4}
    i = int(np.flatnonzero(ds.scales_of == 4)[0])
    w = ds[i]
    assert w.scale == 4 and w.values.shape == (3, 64)
    z = n.transform(frame)[w.start : w.start + 256].reshape(64, 4, 3)
    o = frame.observed[w.start : w.start + 256].reshape(64, 4, 3)
    expect = np.where(o.any(1), (z * o).sum(1) / np.maximum(o.sum(1), 1), 0.0)
    np.testing.assert_allclose(w.values, expect.T, atol=1e-6)
    np.testing.assert_array_equal(w.observed, o.any(1).T)
    # a coarse patch lasts 4x longer: the duration code says so
    w1 = ds[int(np.flatnonzero(ds.scales_of == 1)[0])]
    assert w.time_feats[0, -1] == pytest.approx(w1.time_feats[0, -1] + np.log10(4), abs=1e-5)


def test_window_at_matches_dataset_and_pads_before_start() -> None:
    frame = synthetic_frame(3, 500, seed=7)
    spec = WindowSpec(length=64, stride=8, patch=16, min_observed=0.0)
    n = Normaliser.fit(frame)
    ds = WindowDataset(frame, n, spec)
    w = window_at(frame, n, spec, end_index=int(ds.starts[5]) + 64)
    np.testing.assert_array_equal(w.values, ds[5].values)
    np.testing.assert_array_equal(w.time_feats, ds[5].time_feats)
    early = window_at(frame, n, spec, end_index=10)
    assert early.start == 10 - 64
    assert not early.observed[:, :54].any()
    np.testing.assert_array_equal(early.observed[:, 54:], frame.observed[:10].T)
    with pytest.raises(InputError):
        window_at(frame, n, spec, end_index=501)


def test_window_level_measures_each_sensor_from_its_window_median() -> None:
    frame = synthetic_frame(6, 600, seed=8, missing=0.1)
    n = Normaliser.fit(frame, 200)
    site = WindowSpec(length=64, stride=16, patch=16, min_observed=0.0)
    win = WindowSpec(length=64, stride=16, patch=16, min_observed=0.0, level="window")
    a, b = WindowDataset(frame, n, site)[20], WindowDataset(frame, n, win)[20]
    np.testing.assert_array_equal(a.observed, b.observed)
    assert not b.values[~b.observed].any()  # unobserved cells stay 0
    for c in range(6):
        o = b.observed[c]
        assert np.median(b.values[c, o]) == pytest.approx(0.0, abs=1e-5)
        # same shape as the site-level window where no value was clipped there
        if np.abs(a.values[c, o]).max() < n.clip:
            d = a.values[c, o] - b.values[c, o]
            np.testing.assert_allclose(d, d[0], atol=1e-5)
    # window_at cuts the same window as the dataset
    w = window_at(frame, n, win, end_index=int(WindowDataset(frame, n, win).starts[20]) + 64)
    np.testing.assert_array_equal(w.values, b.values)


def test_window_level_clips_after_subtracting_the_level() -> None:
    # a plate that settles far beyond its training range: at site level it sits on the clip
    # (a flat line), at window level its shape inside the window survives
    t = np.arange(400, dtype=np.float64)
    frame = synthetic_frame(2, 400, seed=9, missing=0.0)
    vals = frame.values.copy()
    vals[:, 1] = np.where(t < 100, 0.001 * np.sin(t), 1000.0 + t)
    frame = SensorFrame(vals, frame.observed, frame.time, frame.sensors, frame.interval)
    n = Normaliser.fit(frame, 100)
    at_site = window_at(frame, n, WindowSpec(length=64, patch=16), end_index=400)
    at_window = window_at(frame, n, WindowSpec(length=64, patch=16, level="window"), 400)
    assert np.ptp(at_site.values[1]) == 0.0 and at_site.values[1, 0] == n.clip
    assert np.ptp(at_window.values[1]) == pytest.approx(2 * n.clip)  # clipped both ends
    assert at_window.values[1, 0] == -n.clip and at_window.values[1, -1] == n.clip
    assert np.all(np.diff(at_window.values[1]) >= 0)


def test_window_level_is_checked_and_round_trips() -> None:
    with pytest.raises(InputError, match="level"):
        WindowSpec(level="sensor")
    spec = WindowSpec(level="window")
    assert WindowSpec.from_dict(spec.to_dict()) == spec
    assert WindowSpec.from_dict({"length": 128}).level == "site"  # older runs: site level


def test_sensor_features_permute_with_sensors_and_code_new_sensors() -> None:
    frame = synthetic_frame(9, 10, seed=8)
    f = sensor_features(frame.sensors)
    assert f.shape == (9, N_SENSOR_FEATS) and np.isfinite(f).all()
    perm = np.random.default_rng(0).permutation(9)
    fp = sensor_features(frame.sensors.iloc[perm].reset_index(drop=True))
    np.testing.assert_allclose(fp, f[perm], atol=1e-6)
    # a sensor never seen anywhere still gets a code from its metadata
    new = pd.DataFrame(
        [("X1", "extensometer", "mm", np.nan, np.nan, np.nan, "BH-new", "{}")],
        columns=["id", "kind", "unit", "x", "y", "z", "group", "meta"],
    )
    g = sensor_features(new)
    assert np.isfinite(g).all() and g[0].any()
    info = sensor_info(g)
    assert SENSOR_KINDS[info.kind[0]] == "extensometer"
    assert not info.has_position[0]
    assert info.group[0] >= 0


def test_sensor_info_roundtrip_and_group_hash() -> None:
    frame = synthetic_frame(6, 10, seed=9)
    info = sensor_info(sensor_features(frame.sensors))
    assert [SENSOR_KINDS[k] for k in info.kind] == list(frame.sensors["kind"])
    assert info.has_position.all()
    same = frame.sensors["group"].to_numpy()
    for i in range(6):
        for j in range(6):
            assert (info.group[i] == info.group[j]) == (same[i] == same[j])
    np.testing.assert_array_equal(group_code("BH1"), group_code("BH1"))
    assert not np.array_equal(group_code("BH1"), group_code("BH2"))
    assert not group_code("").any()
    assert unit_family("kPa") == "pressure" and unit_family("mm") == "length"
    assert unit_family("°C") == "temperature" and unit_family("furlongs") == "other"


def test_time_features_come_from_timestamps() -> None:
    t = np.datetime64("2024-01-01T00:00", "ns") + np.arange(64) * np.timedelta64(1, "h")
    a = time_features(t, 16)
    assert a.shape == (4, N_TIME_FEATS) and np.isfinite(a).all()
    b = time_features(t + np.timedelta64(182, "D"), 16)  # half a year later
    np.testing.assert_allclose(a[:, :8], b[:, :8], atol=1e-6)  # elapsed codes equal
    assert np.abs(a[:, 8:10] - b[:, 8:10]).max() > 1.0  # time of year differs
    c = time_features(
        np.datetime64("2024-01-01", "ns") + np.arange(64) * np.timedelta64(1, "D"), 16
    )
    assert c[0, -1] == pytest.approx(a[0, -1] + np.log10(24), abs=1e-5)  # patch duration


def test_windows_module_does_not_import_torch() -> None:
    code = "import sys, geojepa.windows, geojepa.codes; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
