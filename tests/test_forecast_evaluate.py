"""The forecast harness: cutoff enforcement, scores, rolling origins, lagged-forcing ridge."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from geojepa.forecast.base import Drivers, Forecast, Forecaster
from geojepa.forecast.evaluate import (
    Series,
    classic,
    evaluate_horizons,
    evaluate_rest,
    forecast_from,
    summarise,
    targets_at,
    truncate,
)
from geojepa.forecast.lagged import LaggedRidge, fit_ridge_loo
from geojepa.forecast.methods import CLASSIC


def staged_plate(seed: int, name: str = "P") -> Series:
    """Settlement under two fill stages, irregular 1-5 day readings."""
    rng = np.random.default_rng(seed)
    t = np.concatenate([[0.0], np.cumsum(rng.uniform(1.0, 5.0, 119))])
    stage2 = t >= 150.0
    x1 = t
    x2 = np.clip(t - 150.0, 0.0, None)
    s = x1 / (3.0 + 0.02 * x1) + np.where(stage2, x2 / (2.0 + 0.03 * x2), 0.0)
    s = s + rng.normal(0, 0.3, t.size)
    fill = np.where(stage2, 3.0, 1.5)
    return Series(name, t, s, {"surcharge": fill})


def daily_well(seed: int, n: int = 1500, name: str = "W") -> Series:
    """A head responding to rain minus evaporation through a delayed kernel (peak after 20
    days), so most of the next month's change is set by rain already fallen."""
    rng = np.random.default_rng(seed)
    rain = rng.gamma(0.4, 5.0, n)
    evap = 1.5 + np.sin(np.arange(n) * 2 * np.pi / 365.25)
    temp = 10.0 + 8.0 * np.sin(np.arange(n) * 2 * np.pi / 365.25)
    net = rain - evap
    lag = np.arange(120, dtype=float)
    kernel = lag**2 * np.exp(-lag / 10.0)
    recharge = np.convolve(net, kernel / kernel.sum(), mode="full")[:n]
    head = 10.0 + 0.5 * recharge + rng.normal(0, 0.005, n)
    return Series(
        name,
        np.arange(n, dtype=float),
        head,
        {"rain": rain, "evaporation": evap, "temperature": temp},
    )


ALL_CLASSIC = {
    name: classic(
        name, **({"load": "surcharge"} if name in ("hyperbolic", "asaoka", "consolidation") else {})
    )
    for name in CLASSIC
}


# --------------------------------------------------------------------------- cutoff enforcement
def test_truncate_keeps_readings_up_to_the_cutoff_only() -> None:
    s = staged_plate(0)
    h = truncate(s, 100.0)
    assert h.t.max() <= 100.0 and h.t.size == int((s.t <= 100.0).sum())
    assert set(h.drivers) == {"surcharge"} and h.drivers["surcharge"].size == h.t.size
    h.y[:] = -1.0  # a copy: the original is untouched
    assert np.all(s.y[s.t <= 100.0] != -1.0)


def _tamper(s: Series, cutoff: float, rng: np.random.Generator) -> Series:
    after = s.t > cutoff
    y = s.y.copy()
    y[after] = rng.normal(1e3, 1e3, int(after.sum()))
    drivers = {k: np.where(after, rng.normal(50, 50, v.size), v) for k, v in s.drivers.items()}
    return Series(s.name, s.t, y, drivers, s.origin)


@pytest.mark.parametrize("name", sorted(ALL_CLASSIC))
def test_data_after_the_cutoff_cannot_change_a_classic_forecast(name: str) -> None:
    s = staged_plate(1)
    cutoff = 200.0
    tf = s.t[s.t > cutoff]
    a, _ = forecast_from(ALL_CLASSIC[name], s, cutoff, tf)
    b, _ = forecast_from(
        ALL_CLASSIC[name], _tamper(s, cutoff, np.random.default_rng(2)), cutoff, tf
    )
    np.testing.assert_array_equal(a.prediction, b.prediction)
    np.testing.assert_array_equal(a.lower, b.lower)
    np.testing.assert_array_equal(a.upper, b.upper)


def test_data_after_the_cutoff_cannot_change_the_ridge_forecast() -> None:
    s = daily_well(3, n=900)
    cutoff = 700.0
    tf = cutoff + np.array([1.0, 7.0, 30.0])
    make = lambda training: LaggedRidge()  # noqa: E731
    a, _ = forecast_from(make, s, cutoff, tf)
    b, _ = forecast_from(make, _tamper(s, cutoff, np.random.default_rng(4)), cutoff, tf)
    np.testing.assert_array_equal(a.prediction, b.prediction)
    np.testing.assert_array_equal(a.upper, b.upper)


class Spy(Forecaster):
    """Records what it was given; forecasts the mean of its training series' last values."""

    name = "spy"
    seen: ClassVar[list[tuple[float, int, tuple[str, ...]]]] = []

    def __init__(self, training: Sequence[Series]) -> None:
        self.training_names = tuple(s.name for s in training)

    def fit(self, t: np.ndarray, y: np.ndarray, drivers: Drivers | None = None) -> Spy:
        Spy.seen.append((float(t.max()), int(t.size), self.training_names))
        self.last_ = float(y[np.isfinite(y)][-1])
        return self

    def predict(self, t_future: np.ndarray) -> Forecast:
        p = np.full(t_future.shape, self.last_)
        return Forecast(t_future, p, p, p)


def test_harness_gives_the_forecaster_nothing_after_the_cutoff_and_others_as_training() -> None:
    series = [staged_plate(i, f"P{i}") for i in range(3)]
    Spy.seen = []
    rec = evaluate_rest({"spy": Spy}, series, fractions=(0.3, 0.5))
    assert len(Spy.seen) == 6
    for s in series:
        for f in (0.3, 0.5):
            cutoff = s.t[0] + f * (s.t[-1] - s.t[0])
            rows = rec[(rec["series"] == s.name) & (rec["cutoff_label"] == f"{round(100 * f)}%")]
            assert rows["cutoff"].iloc[0] == pytest.approx(cutoff)
            assert rows["t"].min() > cutoff
            assert len(rows) == int((s.t > cutoff).sum())  # every later reading is forecast
    for (t_max, _, training), (s, _f) in zip(
        Spy.seen, [(s, f) for s in series for f in (0.3, 0.5)], strict=True
    ):
        assert t_max <= s.t[0] + 0.5 * (s.t[-1] - s.t[0])
        assert s.name not in training and len(training) == 2  # leave one out


def test_forecast_times_must_follow_the_cutoff() -> None:
    s = staged_plate(5)
    with pytest.raises(ValueError, match="after the cutoff"):
        forecast_from(classic("persistence"), s, 100.0, np.array([100.0]))


# --------------------------------------------------------------------------- scores
def test_summarise_computes_known_errors_and_ratios_to_persistence() -> None:
    rows = []
    for method, preds in {"persistence": [1.0, 1.0, 1.0], "m": [2.0, 4.0, np.nan]}.items():
        for i, (truth, p) in enumerate(zip([2.0, 3.0, 4.0], preds, strict=True)):
            rows.append(
                {
                    "series": "S",
                    "method": method,
                    "cutoff_label": "50%",
                    "cutoff": 0.0,
                    "t": float(i + 1),
                    "horizon": float(i + 1),
                    "truth": truth,
                    "prediction": p,
                    "lower": p - 0.5,
                    "upper": p + 0.5,
                    "fallback": "",
                }
            )
    out = summarise(pd.DataFrame(rows), by=("method",)).set_index("method")
    # persistence errors 1, 2, 3; m errors 0, 1, NaN (not scored, counted)
    assert out.loc["persistence", "mae"] == pytest.approx(2.0)
    assert out.loc["persistence", "rmse"] == pytest.approx(np.sqrt(14 / 3))
    assert out.loc["m", "mae"] == pytest.approx(0.5)
    assert out.loc["m", "n_nan"] == 1
    # ratio on the same rows: m (0 + 1)/2 over persistence (1 + 2)/2
    assert out.loc["m", "mae_vs_persistence"] == pytest.approx(1.0 / 3.0)
    assert out.loc["m", "coverage"] == pytest.approx(0.5)
    assert out.loc["persistence", "coverage"] == 0.0


def test_summarise_bins_horizons() -> None:
    s = staged_plate(6)
    rec = evaluate_rest({"persistence": classic("persistence")}, [s], fractions=(0.3,))
    out = summarise(rec, by=("method", "horizon"), horizon_bins=(0, 30, 90, np.inf))
    assert list(out["horizon"]) == ["(0, 30]", "(30, 90]", "(90, inf]"]
    assert out["n"].sum() == len(rec)


def test_classic_methods_beat_persistence_on_settlement_within_a_stage() -> None:
    series = [staged_plate(10 + i, f"P{i}") for i in range(3)]
    # cutoff at 50 % falls inside the second stage: the hyperbola's own ground
    rec = evaluate_rest(ALL_CLASSIC, series, fractions=(0.5,))
    out = summarise(rec, by=("method",)).set_index("method")
    assert out.loc["hyperbolic", "mae_vs_persistence"] < 0.5
    assert out.loc["asaoka", "mae_vs_persistence"] < 1.0


# --------------------------------------------------------------------------- rolling origins
def test_targets_at_uses_the_nearest_reading_within_tolerance() -> None:
    t = np.arange(0.0, 100.0, 7.0)  # weekly readings
    s = Series("w", t, np.sin(t))
    hs, ts, ys = targets_at(s, 14.0, (1.0, 7.0, 30.0), tolerance=3.5)
    assert list(hs) == [7.0, 30.0]  # no reading within 3.5 days of day 15
    assert list(ts) == [21.0, 42.0]
    np.testing.assert_allclose(ys, np.sin([21.0, 42.0]))


def test_lagged_ridge_learns_a_known_forcing_response() -> None:
    s = daily_well(7)
    cutoffs = {"W": np.arange(1100.0, 1450.0, 10.0)}
    methods = {"persistence": classic("persistence"), "ridge": lambda training: LaggedRidge()}
    rec = evaluate_horizons(methods, [s], cutoffs, (1.0, 7.0, 30.0))
    out = summarise(rec, by=("method", "horizon")).set_index(["method", "horizon"])
    # a week ahead the change is set by rain already fallen; a month ahead, partly by rain
    # still to come (unknown at the cutoff), so the gain shrinks
    assert out.loc[("ridge", 7.0), "mae_vs_persistence"] < 0.5
    assert out.loc[("ridge", 30.0), "mae_vs_persistence"] < 0.9
    assert (out.loc["ridge", "n_fallback"] == 0).all()


def test_lagged_ridge_refuses_horizons_beyond_training_and_needs_a_regular_grid() -> None:
    s = daily_well(8, n=400)
    m = LaggedRidge(horizons=(1.0, 7.0)).fit(s.t, s.y, s.drivers)
    with pytest.raises(ValueError, match="horizon"):
        m.predict(np.array([s.t[-1] + 30.0]))
    mid = m.predict(np.array([s.t[-1] + 4.0]))  # interpolated between 1 and 7 days
    assert np.isfinite(mid.prediction).all()
    t = s.t.copy()
    t[5:] += 0.5
    with pytest.raises(ValueError, match="regular"):
        LaggedRidge().fit(t, s.y, s.drivers)


def test_fit_ridge_loo_matches_brute_force_leave_one_out() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(40, 3)) * np.array([1.0, 10.0, 0.1])
    y = x @ np.array([0.5, -0.1, 3.0]) + rng.normal(0, 0.3, 40)
    alphas = (0.1, 1.0, 10.0)
    fit = fit_ridge_loo(x, y, alphas)

    def ridge(xt: np.ndarray, yt: np.ndarray, a: float, xq: np.ndarray) -> np.ndarray:
        mu, sd = xt.mean(0), xt.std(0)
        z = (xt - mu) / sd
        coef = np.linalg.solve(z.T @ z + a * np.eye(3), z.T @ (yt - yt.mean()))
        return yt.mean() + ((xq - mu) / sd) @ coef

    # with the scaling fixed from all rows (as the closed form assumes)
    mu, sd = x.mean(0), x.std(0)
    z = (x - mu) / sd
    loo = {}
    for a in alphas:
        errs = []
        for i in range(40):
            keep = np.arange(40) != i
            zt, yt = z[keep], y[keep]
            # intercept unpenalised: centre on the kept rows
            zc = zt - zt.mean(0)
            coef = np.linalg.solve(zc.T @ zc + a * np.eye(3), zc.T @ (yt - yt.mean()))
            pred = yt.mean() + (z[i] - zt.mean(0)) @ coef
            errs.append(y[i] - pred)
        loo[a] = float(np.mean(np.square(errs)))
    best = min(loo, key=lambda k: loo[k])
    assert fit.alpha == best
    assert fit.loo_mse == pytest.approx(loo[best], rel=1e-6)
    np.testing.assert_allclose(fit.predict(x), ridge(x, y, best, x), rtol=1e-9)


def test_summarise_refuses_ambiguous_series_names() -> None:
    rec = evaluate_rest({"persistence": classic("persistence")}, [staged_plate(20)], (0.5,))
    twice = pd.concat([rec, rec], ignore_index=True)  # two series both named "P"
    with pytest.raises(ValueError, match="unique names"):
        summarise(twice)
