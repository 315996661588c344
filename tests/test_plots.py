"""Report figures drawn alone from plain inputs: labelled axes, robust to empty input."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from geojepa import plots
from geojepa.site import Sensor, sensors_frame

T0 = np.datetime64("2024-01-01T00:00", "ns")


def _hours(n: int) -> np.ndarray:
    return T0 + np.arange(n) * np.timedelta64(1, "h")


def _data_axes(fig: Figure) -> list:
    """Axes that draw data (not colour bars, not switched off)."""
    return [ax for ax in fig.axes if ax.axison and ax.get_label() != "<colorbar>"]


def _check_labels(fig: Figure) -> None:
    """Every data axis has a y label; every column of axes has an x label at its bottom."""
    axes = _data_axes(fig)
    assert axes, "nothing drawn"
    for ax in axes:
        assert ax.get_ylabel().strip(), f"axis without y label: {ax}"
    assert any(ax.get_xlabel().strip() for ax in axes)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)  # draws without error
    assert buf.getvalue()[:4] == b"\x89PNG"


def _sensors() -> pd.DataFrame:
    return sensors_frame(
        [
            Sensor("P1", "piezometer", "kPa", 0.0, 0.0, 95.0, "BH1"),
            Sensor("P2", "piezometer", "kPa", 0.0, 0.0, 90.0, "BH1"),
            Sensor("S1", "settlement", "mm", 30.0, 40.0, 100.0, ""),
            Sensor("R1", "rain_gauge", "mm"),  # no position: left out of plan and section
        ]
    )


def test_site_plan_and_section_have_labelled_axes() -> None:
    for fig in (plots.site_plan(_sensors()), plots.depth_section(_sensors())):
        _check_labels(fig)
    ax = _data_axes(plots.site_plan(_sensors()))[0]
    assert "(m)" in ax.get_xlabel() and "(m)" in ax.get_ylabel()


def test_section_axis_measures_distance_along_a_line() -> None:
    # three points on a line at 3-4-5: distances 0, 5, 10 m whatever the direction
    x = np.array([6.0, 0.0, 3.0, np.nan])
    y = np.array([8.0, 0.0, 4.0, 1.0])
    along, label = plots.section_axis(x, y)
    np.testing.assert_allclose(np.sort(along[:3]), [0.0, 5.0, 10.0], atol=1e-9)
    assert np.isnan(along[3])
    assert "(m)" in label


def test_thin_keeps_extremes_and_bounds_points() -> None:
    rng = np.random.default_rng(0)
    t = _hours(10_000)
    v = rng.normal(size=10_000)
    v[4321] = 50.0  # one-sample spike
    v[777] = -40.0
    tt, vv = plots.thin(t, v, 500)
    assert len(vv) <= 500
    assert vv.max() == 50.0 and vv.min() == -40.0
    assert np.all(np.diff(tt.astype(np.int64)) > 0)  # time order kept
    _, short_v = plots.thin(t[:100], v[:100], 500)
    assert len(short_v) == 100


def test_sensor_series_draws_every_piece() -> None:
    rng = np.random.default_rng(1)
    t = _hours(500)
    alarms = pd.DataFrame({"start": [t[100]], "end": [t[110]], "level": ["red"]})
    events = pd.DataFrame({"start": [t[101]], "end": [t[105]]})
    panels = [
        plots.SensorPanel(
            sensor_id=f"S{k}",
            unit="mm",
            times=t,
            values=rng.normal(size=500).cumsum(),
            triggers={"amber": 5.0, "red": 8.0} if k == 0 else None,
            score_times=t,
            score=np.abs(rng.normal(size=500)),
            alarms=alarms if k == 0 else None,
            events=events if k == 1 else None,
        )
        for k in range(3)
    ]
    fig = plots.sensor_series(panels, split=pd.Timestamp(t[250]).tz_localize("UTC"), score_top=10.0)
    _check_labels(fig)
    axes = _data_axes(fig)
    assert len(axes) == 3
    assert all("(mm)" in ax.get_ylabel() for ax in axes)
    assert axes[-1].get_xlabel() == plots.TIME_LABEL
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "sensor score (strip top = 10)" in legend
    assert {"amber trigger", "red trigger", "red alarm (attributed)", "labelled event"} <= set(
        legend
    )
    assert "amber alarm (attributed)" not in legend  # no amber alarm was given


def test_score_timeline_and_attribution() -> None:
    t = _hours(200)
    score = np.linspace(0, 4, 200)
    alarm = np.where(score > 3, "red", np.where(score > 2, "amber", "green"))
    _check_labels(plots.score_timeline(t, score, alarm))
    table = pd.DataFrame(
        {
            "episode": ["#1", "#1", "#2"],
            "sensor_id": ["A", "B", "C"],
            "share": [0.7, 0.3, 1.0],
            "level": ["red", "red", "amber"],
        }
    )
    fig = plots.attribution_bars(table)
    _check_labels(fig)
    assert len(_data_axes(fig)) == 2


def test_forecast_plot_with_and_without_history() -> None:
    t = _hours(48)
    future = _hours(60)[48:]
    pred = np.linspace(1, 2, 12)
    fig = plots.forecast_plot(
        sensor_id="S1",
        unit="mm",
        history_times=t,
        history=np.linspace(0, 1, 48),
        times=future,
        prediction=pred,
        lower=pred - 0.1,
        upper=pred + 0.1,
        methods={"persistence": np.ones(12)},
        truth_times=future,
        truth=pred + 0.05,
    )
    _check_labels(fig)
    assert len(_data_axes(fig)) == 2  # whole record + zoom
    alone = plots.forecast_plot(
        sensor_id="S1",
        unit="",
        history_times=t[:0],
        history=np.array([]),
        times=future,
        prediction=pred,
    )
    _check_labels(alone)
    assert "(no unit)" in _data_axes(alone)[0].get_ylabel()


def test_training_curves_and_collapse_metrics() -> None:
    steps = np.arange(0, 100, 10)
    metrics = pd.DataFrame(
        {"step": steps, "loss": 1.0 / (1 + steps), "lr": np.full(10, 1e-3), "val/loss": np.nan}
    )
    metrics.loc[[4, 9], "val/loss"] = [0.2, 0.1]
    metrics["latent_loss"] = metrics["loss"]  # the same curve under another name
    fig = plots.training_curves(metrics)
    _check_labels(fig)
    loss_ax = _data_axes(fig)[0]
    assert loss_ax.get_yscale() == "log"
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["loss", "val/loss"]
    collapse = pd.DataFrame({"step": steps, "rankme": np.linspace(5, 30, 10), "std": 0.1})
    fig = plots.collapse_metrics(collapse, width=64)
    _check_labels(fig)
    assert len(_data_axes(fig)) == 2
    # a negative loss (e.g. a SIGReg term) forbids the log scale
    metrics["loss"] = metrics["loss"] - 0.5
    assert _data_axes(plots.training_curves(metrics))[0].get_yscale() == "linear"


def test_embedding_projection_colours_by_time_and_season() -> None:
    rng = np.random.default_rng(2)
    times = T0 + np.arange(365) * np.timedelta64(1, "D")
    fig = plots.embedding_projection(rng.normal(size=(365, 2)), times, explained=[0.5, 0.2])
    _check_labels(fig)
    axes = _data_axes(fig)
    assert axes[0].get_xlabel() == "PC 1 (50 % of variance)"
    legend = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert legend == list(plots.SEASONS)


def test_season_of_months() -> None:
    months = np.array(
        ["2024-01-15", "2024-04-15", "2024-07-15", "2024-10-15", "2024-12-01"],
        dtype="datetime64[ns]",
    )
    assert plots.season_of(months).tolist() == [0, 1, 2, 3, 0]


@pytest.mark.parametrize(
    "fig",
    [
        pytest.param(lambda: plots.site_plan(_sensors().iloc[3:]), id="plan-no-positions"),
        pytest.param(lambda: plots.sensor_series([]), id="series-none"),
        pytest.param(
            lambda: plots.attribution_bars(pd.DataFrame(columns=["episode"])), id="bars-none"
        ),
        pytest.param(
            lambda: plots.collapse_metrics(pd.DataFrame({"step": [1]})), id="collapse-none"
        ),
        pytest.param(
            lambda: plots.embedding_projection(np.zeros((0, 2)), np.array([])), id="emb-none"
        ),
    ],
)
def test_empty_inputs_say_so_in_words(fig: object) -> None:
    figure = fig()  # type: ignore[operator]
    texts = [t.get_text() for ax in figure.axes for t in ax.texts]
    assert any(t.startswith("no ") for t in texts), texts


def test_score_timeline_shades_each_alarm_over_its_whole_interval() -> None:
    from matplotlib.dates import date2num

    t = _hours(10)
    alarm = ["green"] * 3 + ["red"] + ["green"] * 2 + ["amber"] * 2 + ["green"] * 2
    fig = plots.score_timeline(t, np.arange(10.0), alarm)
    spans = sorted(
        (float(p.vertices[:, 0].min()), float(p.vertices[:, 0].max()))
        for c in fig.axes[0].collections
        for p in c.get_paths()
    )
    hour = 1 / 24
    # the one-sample red alarm at 03:00 covers 03:00-04:00, as in the alarm strip below;
    # the amber run at 06:00 and 07:00 covers 06:00-08:00
    t0 = float(date2num(t[0]))
    want = [(t0 + 3 * hour, t0 + 4 * hour), (t0 + 6 * hour, t0 + 8 * hour)]
    assert np.allclose(spans, want, rtol=0, atol=1e-6), spans


def test_text_from_the_data_is_drawn_literally_not_as_mathtext() -> None:
    # a sensor id, unit, group, kind or method name is data: `$...$` in it is no formula
    odd = "PZ$\\foo$_1"
    t = _hours(30)
    panel = plots.SensorPanel(sensor_id=odd, unit="m$^3$", times=t, values=np.arange(30.0))
    fig = plots.sensor_series([panel])
    _check_labels(fig)  # a bad formula raised when the PNG was drawn
    label = fig.axes[0].yaxis.label
    assert label._preprocess_math(label.get_text()) == (f"{odd}\n(m$^3$)", False)  # as written
    table = pd.DataFrame({"episode": [odd], "sensor_id": [odd], "share": [1.0], "level": ["red"]})
    _check_labels(plots.attribution_bars(table))
    sensors = sensors_frame([Sensor(odd, "x$\\y$", "kPa", 0.0, 0.0, 1.0, "B$\\h$")])
    _check_labels(plots.site_plan(sensors))
    _check_labels(plots.depth_section(sensors))
    future = _hours(40)[30:]
    _check_labels(
        plots.forecast_plot(
            sensor_id=odd,
            unit="m$^3$",
            name="J$\\x$",
            history_times=t,
            history=np.arange(30.0),
            times=future,
            prediction=np.ones(10),
            methods={"$\\m$": np.ones(10)},
        )
    )
    metrics = pd.DataFrame({"step": [1, 2], "loss": [1.0, 0.5], "$\\q$_loss": [0.3, 0.2]})
    _check_labels(plots.training_curves(metrics))


def test_loss_axis_claims_no_loss_the_curves_may_not_be() -> None:
    # the logged `loss` is latent + SIGReg (every preset) and the latent loss may be l2:
    # the axis must not call every curve on it a latent smooth-L1
    steps = np.arange(0, 50, 10)
    metrics = pd.DataFrame(
        {"step": steps, "loss": 2.0 / (1 + steps), "latent_loss": 1.0 / (1 + steps)}
    )
    metrics["sigreg"] = metrics["loss"] - metrics["latent_loss"]
    ylabel = _data_axes(plots.training_curves(metrics))[0].get_ylabel()
    assert "smooth-L1" not in ylabel and "loss" in ylabel
