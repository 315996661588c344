"""Timestamps: formats, offsets, time zones, daylight-saving repeats, order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geojepa.errors import InputError, UsageError
from geojepa.io.csvcore import LineMap
from geojepa.io.times import check_increasing, parse_times, resolve_clock_repeat
from geojepa.site import Quality


def _lines(n: int, first: int = 2) -> LineMap:
    from pathlib import Path

    return LineMap(Path("f.csv"), "utf-8", first, kept=np.arange(first, first + n))


def _utc(texts: list[str], **kw: object) -> tuple[pd.DatetimeIndex, np.ndarray]:
    pt = parse_times(texts, file="f.csv", lines=_lines(len(texts)), column="t", **kw)  # type: ignore[arg-type]
    return pd.DatetimeIndex(pt.utc).tz_localize("UTC"), pt.flags


def test_iso_naive_in_utc_and_in_a_zone() -> None:
    t, f = _utc(["2024-01-01 00:00:00", "2024-01-01T01:00"])
    assert list(t.hour) == [0, 1]
    assert set(f) == {Quality.OK.value}
    t, _ = _utc(["2024-01-01 00:00"], tz="Europe/Oslo")
    assert t[0] == pd.Timestamp("2023-12-31 23:00", tz="UTC")


def test_explicit_offsets_win_over_tz() -> None:
    t, _ = _utc(["2024-03-30T12:00:00+01:00", "2024-03-31T12:00:00+02:00", "2024-04-01T10:00Z"])
    assert list(t) == [
        pd.Timestamp(x, tz="UTC")
        for x in ("2024-03-30 11:00", "2024-03-31 10:00", "2024-04-01 10:00")
    ]


def test_mixed_offsets_refused_with_line() -> None:
    with pytest.raises(InputError, match="mixed time offsets") as err:
        _utc(["2024-01-01T00:00:00Z", "2024-01-01T01:00:00", "2024-01-01T02:00:00Z"])
    assert err.value.line == 3  # the second data row (first line 2)


def test_us_dates_and_day_first_detected_from_the_data() -> None:
    t, _ = _utc(["3/17/17 16:30", "3/17/17 16:40", "12/1/17 0:00"])
    assert t[0] == pd.Timestamp("2017-03-17 16:30", tz="UTC")
    t, _ = _utc(["17/03/2017 16:30", "18/03/2017 16:30"])
    assert t[1] == pd.Timestamp("2017-03-18 16:30", tz="UTC")
    # ambiguous (all fields <= 12): the order that keeps time increasing
    t, _ = _utc(["01/02/2020", "01/03/2020", "01/04/2020"])
    assert list(t.month) == [1, 1, 1]
    t, _ = _utc(["02/01/2020", "03/01/2020", "04/01/2020"])
    assert list(t.month) == [1, 1, 1]


def test_compact_dates() -> None:
    t, _ = _utc(["20160101", "20160102"])
    assert t[1] == pd.Timestamp("2016-01-02", tz="UTC")


def test_unparsable_names_line_and_example() -> None:
    with pytest.raises(InputError, match="cannot read the timestamp") as err:
        _utc(["2024-01-01 00:00", "2024-01-01 01:00", "yesterday", "2024-01-01 03:00"])
    assert err.value.line == 4
    assert "ISO 8601" in err.value.render()
    with pytest.raises(InputError, match="empty") as err:
        _utc(["2024-01-01 00:00", " "])
    assert err.value.line == 3


def test_unknown_zone_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown time zone"):
        _utc(["2024-01-01"], tz="Mars/Olympus")


def test_dst_repeat_resolved_in_order_and_flagged() -> None:
    # US autumn change 2023-11-05: 01:00-01:59 local happens twice (PDT then PST)
    local = pd.date_range("2023-11-05 00:30", "2023-11-05 01:45", freq="15min")
    texts = [str(t) for t in local] + [
        str(t) for t in pd.date_range("2023-11-05 01:00", "2023-11-05 02:15", freq="15min")
    ]
    t, f = _utc(texts, tz="America/Los_Angeles")
    assert (np.diff(t.asi8) == 15 * 60 * 10**9).all()  # one regular series in UTC
    assert t[0] == pd.Timestamp("2023-11-05 07:30", tz="UTC")
    assert (f == Quality.DST_REPEAT.value).sum() == 8  # 4 readings in each pass of the hour
    assert f[0] == Quality.OK.value and f[-1] == Quality.OK.value


def test_spring_gap_moved_forward_and_flagged() -> None:
    t, f = _utc(["2024-03-10 01:30", "2024-03-10 02:30", "2024-03-10 03:30"], tz="America/New_York")
    assert list(f) == [Quality.OK.value, Quality.CLOCK.value, Quality.OK.value]
    assert t[1] == pd.Timestamp("2024-03-10 07:00", tz="UTC")


def test_manual_clock_setback_resolved_in_order() -> None:
    # a logger set back one hour by hand at 12:00 (off the calendar date), 15-min readings
    a = pd.date_range("2015-09-15 10:00", "2015-09-15 12:00", freq="15min")
    b = pd.date_range("2015-09-15 11:15", "2015-09-15 12:30", freq="15min")
    naive = np.concatenate([a.to_numpy(), b.to_numpy()]).astype("datetime64[ns]")
    fixed, rep = resolve_clock_repeat(naive)
    assert (np.diff(fixed.astype(np.int64)) == 15 * 60 * 10**9).all()
    assert rep.sum() == 8
    assert pd.Timestamp(fixed[0]) == pd.Timestamp("2015-09-15 09:00")


def test_backwards_time_is_refused_with_line() -> None:
    t = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 00:30"]).to_numpy()
    with pytest.raises(InputError, match="backwards") as err:
        check_increasing(t, file="f.csv", lines=_lines(3), column="t")
    assert err.value.line == 4
    assert "--tz" in err.value.render()


def test_duplicates_returned_not_dropped() -> None:
    t = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:00", "2024-01-01 01:00"]).to_numpy()
    dup = check_increasing(t, file="f.csv", lines=_lines(3), column="t")
    assert dup.tolist() == [False, True, False]


def test_clock_repeat_leaves_a_repeated_row_to_the_duplicate_check() -> None:
    # a row written twice (same time) is not a clock set back by one step: the earlier
    # readings must not move (the readers drop an identical repeat, refuse a differing one)
    a = pd.date_range("2015-09-15 10:00", "2015-09-15 12:00", freq="15min").to_numpy()
    naive = np.concatenate([a[:5], a[4:]]).astype("datetime64[ns]")
    fixed, rep = resolve_clock_repeat(naive)
    assert (fixed == naive).all()
    assert not rep.any()
    # hourly readings set back an hour repeat a time: that is still the set-back
    h = pd.date_range("2015-09-15 10:00", "2015-09-15 14:00", freq="h").to_numpy()
    hourly = np.concatenate([h[:3], h[2:]]).astype("datetime64[ns]")
    fixed, rep = resolve_clock_repeat(hourly)
    assert (np.diff(fixed.astype(np.int64)) == 3600 * 10**9).all()
    assert rep.sum() == 2


@pytest.mark.parametrize("fmt", ["%d/%m/%y %H:%M:%S", "%d/%m/%y"])
def test_day_first_two_digit_year_is_not_read_month_first(fmt: str) -> None:
    # a week of day-first dates (all day fields <= 12): every month-first format has its
    # day-first twin, so the order is decided by the data, not by which one is listed
    local = pd.date_range("2024-03-01", "2024-03-08", freq="6h" if "%H" in fmt else "D")
    t, _ = _utc([x.strftime(fmt) for x in local])
    assert list(t.tz_localize(None)) == list(local)


@pytest.mark.parametrize("fmt", ["%m/%d/%y %I:%M:%S %p", "%d/%m/%Y %I:%M %p"])
def test_twelve_hour_clock_with_am_pm_is_read(fmt: str) -> None:
    # logger software often exports "03/17/17 04:30:00 PM"; afternoon rows must land at 16:30
    local = pd.date_range("2017-03-10 09:30", periods=40, freq="90min")
    t, _ = _utc([x.strftime(fmt) for x in local])
    assert list(t.tz_localize(None)) == list(local)


@pytest.mark.parametrize("fmt", ["%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%m/%d/%y %I:%M %p"])
def test_a_midnight_saved_as_a_bare_date_is_midnight(fmt: str) -> None:
    # spreadsheets write the midnight reading as "3/17/2017", the others with their time
    local = pd.date_range("2017-03-16 18:00", periods=24, freq="30min")
    texts = [x.strftime(fmt.partition(" ")[0] if x.hour == x.minute == 0 else fmt) for x in local]
    assert sum(":" not in t for t in texts) == 1
    t, _ = _utc(texts)
    assert list(t.tz_localize(None)) == list(local)


@pytest.mark.parametrize("fmt", ["%d-%m-%Y %H:%M", "%d-%m-%Y"])
def test_day_first_dashed_dates_are_read_not_taken_for_offsets(fmt: str) -> None:
    # "31-03-2024" ends like an offset (-20:24); it is a date, read day-first
    local = pd.date_range("2024-03-25", periods=20, freq="12h" if "%H" in fmt else "D")
    t, _ = _utc([x.strftime(fmt) for x in local])
    assert list(t.tz_localize(None)) == list(local)


def test_an_offset_after_a_time_is_still_an_offset() -> None:
    t, _ = _utc(["2024-03-31T14:15:00+01:00", "2024-03-31T15:15:00+01:00"])
    assert list(t.tz_localize(None)) == list(
        pd.to_datetime(["2024-03-31 13:15", "2024-03-31 14:15"])
    )
