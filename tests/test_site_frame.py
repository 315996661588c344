"""The site data model and the regular grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geojepa.errors import InputError
from geojepa.frame import infer_interval, label_mask, to_frame
from geojepa.site import Site, normalise_kind


def test_site_roundtrip(tmp_path: Path, small_site: Site) -> None:
    small_site.save(tmp_path / "s")
    back = Site.load(tmp_path / "s")
    pd.testing.assert_frame_equal(back.readings, small_site.readings)
    pd.testing.assert_frame_equal(back.sensors, small_site.sensors)
    pd.testing.assert_frame_equal(back.labels, small_site.labels)
    assert back.readings["timestamp"].dt.tz is not None


def test_failed_save_leaves_folder_identical(tmp_path: Path, small_site: Site) -> None:
    small_site.save(tmp_path / "s")
    before = {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir() if p.is_file()}
    with pytest.raises(FileNotFoundError):
        small_site.save(tmp_path / "s", raw_files={"x.csv": tmp_path / "does-not-exist.csv"})
    after = {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir() if p.is_file()}
    assert before == after
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_frame_grid_and_gaps(small_site: Site) -> None:
    frame = to_frame(small_site)
    assert frame.interval == pd.Timedelta("1h")
    assert frame.values.shape == (96, 3)
    p2 = frame.column("P2")
    assert not frame.observed[10:20, p2].any()
    assert np.isnan(frame.values[10:20, p2]).all()
    assert frame.observed[:10, p2].all()
    assert np.isfinite(frame.values[frame.observed]).all()


def test_infer_interval_takes_finest(small_site: Site) -> None:
    assert infer_interval(small_site.readings) == pd.Timedelta("1h")


def test_label_mask(small_site: Site) -> None:
    frame = to_frame(small_site)
    m = label_mask(small_site.labels, frame)
    assert m[:, frame.column("P1")].sum() == 6
    assert m[:, frame.column("P2")].sum() == 0


def test_label_mask_covers_every_cell_an_event_overlaps(small_site: Site) -> None:
    """Readings are floored onto hourly cells, so a label between grid times covers the
    cell it starts in; one inside a single cell covers that cell; one after the last cell
    covers none."""
    frame = to_frame(small_site)
    t0 = pd.Timestamp(frame.time[0]).tz_localize("UTC")

    def rows(start: str, end: str) -> list[int]:
        labels = pd.DataFrame(
            {"start": [t0 + pd.Timedelta(start)], "end": [t0 + pd.Timedelta(end)], "sensors": [""]}
        )
        return np.flatnonzero(label_mask(labels, frame).any(axis=1)).tolist()

    assert rows("6h10min", "8h30min") == [6, 7, 8]
    assert rows("3h20min", "3h40min") == [3]
    assert rows("5h", "6h") == [5, 6]  # on the grid: as before
    assert rows("-2h", "1h") == [0, 1]
    assert rows("96h30min", "99h") == []


def test_unknown_kind_names_known_ones() -> None:
    assert normalise_kind("Piezo") == "piezometer"
    with pytest.raises(InputError, match="use one of"):
        normalise_kind("warp_drive", file="s.csv", line=3)
