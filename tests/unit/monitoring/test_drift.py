"""drift(): detection, the verdict, thresholds, statuses for bad input, and a stored
profile giving the same answers as the DataFrame it was computed from."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milepost.errors import InvalidInput
from milepost.monitoring import DriftResult, Profile, drift, profile
from milepost.monitoring.stats import (
    chi_square,
    js_categorical,
    js_from_samples,
    ks_test,
    psi_categorical,
    psi_from_samples,
    wasserstein,
)


def _frames(
    n: int, seed: int, *, shift: float = 0.0, m: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def one(rows: int, s: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "age": rng.normal(40 + 10 * s, 10, rows),
                "income": rng.lognormal(10, 0.5, rows),
                "visits": rng.poisson(3, rows),
                "plan": rng.choice(["free", "pro", "team"], rows, p=[0.6, 0.3, 0.1]),
            }
        )

    return one(n, 0.0), one(m or n, shift)


def _row(result: DriftResult, feature: str, method: str) -> dict[str, object]:
    f = result.features
    rows = f[(f["feature"] == feature) & (f["method"] == method)]
    assert len(rows) == 1, rows
    return dict(rows.iloc[0])


def test_public_names_are_the_functions_even_after_their_modules_load() -> None:
    import milepost.monitoring.feature_drift
    import milepost.monitoring.profiles

    assert callable(milepost.monitoring.drift)
    assert callable(milepost.monitoring.profile)


def test_rows_are_exact_statistics_from_stats() -> None:
    ref, cur = _frames(3_000, 1, shift=0.3, m=2_000)
    r = drift(ref, cur)
    assert list(r.features.columns[:8]) == [
        "feature",
        "kind",
        "method",
        "statistic",
        "p_value",
        "threshold",
        "drifted",
        "status",
    ]
    a, b = ref["age"].to_numpy(), cur["age"].to_numpy()
    assert _row(r, "age", "psi")["statistic"] == pytest.approx(psi_from_samples(a, b))
    assert _row(r, "age", "jensen_shannon")["statistic"] == pytest.approx(js_from_samples(a, b))
    assert _row(r, "age", "wasserstein")["statistic"] == pytest.approx(wasserstein(a, b))
    ks = ks_test(a, b)
    assert _row(r, "age", "ks")["statistic"] == pytest.approx(ks.statistic)
    assert _row(r, "age", "ks")["p_value"] == pytest.approx(ks.pvalue)
    rc, cc = ref["plan"].value_counts().to_dict(), cur["plan"].value_counts().to_dict()
    assert _row(r, "plan", "psi")["statistic"] == pytest.approx(psi_categorical(rc, cc))
    assert _row(r, "plan", "jensen_shannon")["statistic"] == pytest.approx(js_categorical(rc, cc))
    assert _row(r, "plan", "chi_square")["p_value"] == pytest.approx(chi_square(rc, cc).pvalue)
    assert math.isnan(_row(r, "age", "psi")["p_value"])  # type: ignore[arg-type]


def test_a_shift_is_found_and_no_shift_is_quiet() -> None:
    ref, cur = _frames(10_000, 2, shift=0.5)
    r = drift(ref, cur)
    assert r.drifted_features == ["age"]
    assert r.drifted_share == pytest.approx(0.25)
    # no importance given: every feature matters, so one drifted feature is dataset drift
    assert r.dataset_drift
    # with importances, a feature that matters little drifts without turning the verdict
    weighted = drift(ref, cur, importance={"age": 0.01, "income": 0.5})
    assert weighted.drifted_features == ["age"] and not weighted.dataset_drift
    assert _row(r, "age", "wasserstein")["counted"]
    assert not _row(r, "age", "ks")["counted"]
    assert "1 of 4 features drifted" in r.summary()


def test_default_distance_thresholds_rarely_alarm_without_drift_at_10k_rows() -> None:
    alarms: dict[str, int] = {}
    for seed in range(20):
        ref, cur = _frames(10_000, 100 + seed)
        f = drift(ref, cur).features
        for method in ("psi", "wasserstein", "jensen_shannon"):
            alarms[method] = alarms.get(method, 0) + int(f[f["method"] == method]["drifted"].sum())
    assert alarms == {"psi": 0, "wasserstein": 0, "jensen_shannon": 0}


def test_importance_means_one_drifted_feature_flags_the_dataset() -> None:
    ref, cur = _frames(5_000, 3, shift=0.5)
    r = drift(ref, cur, importance={"age": 0.4, "income": 0.6})
    assert r.dataset_drift
    assert r.important_drifted == ["age"]
    assert "important feature drifted: age" in r.summary()
    quiet = drift(ref, cur, importance={"age": 0.05}, importance_threshold=0.1)
    assert not quiet.dataset_drift
    assert drift(ref, cur, drift_share=0.25).dataset_drift


def test_thresholds_per_method_and_per_feature() -> None:
    ref, cur = _frames(5_000, 4, shift=0.05)
    base = drift(ref, cur)
    assert not _row(base, "age", "wasserstein")["drifted"]
    loose = drift(ref, cur, thresholds={"wasserstein": 0.01, "income": {"psi": 0.0}})
    assert _row(loose, "age", "wasserstein")["threshold"] == 0.01
    assert _row(loose, "age", "wasserstein")["drifted"]
    assert _row(loose, "income", "psi")["drifted"]
    assert not _row(loose, "age", "psi")["drifted"]
    assert _row(loose, "age", "psi")["threshold"] == 0.1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"methods": ["psi", "hellinger"]}, "Unknown drift method"),
        ({"thresholds": {"age": 0.1}}, "not a method"),
        ({"thresholds": {"ks": 1.5}}, r"in \(0, 1\)"),
        ({"thresholds": {"psi": -1}}, ">= 0"),
        ({"thresholds": {"age": {"nope": 0.1}}}, "Unknown drift method"),
        ({"importance": {"age": float("nan")}}, "finite"),
        ({"importance": {"ghost": 1.0}}, "neither side"),
        ({"drift_share": 0}, "drift_share"),
        ({"primary": {"numeric": "chi_square"}}, "not a method for that kind"),
        ({"categorical": ["ghost"]}, "neither frame"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, object], match: str) -> None:
    ref, cur = _frames(50, 5)
    with pytest.raises(InvalidInput, match=match):
        drift(ref, cur, **kwargs)  # type: ignore[arg-type]


def test_bad_inputs_are_refused() -> None:
    ref, _ = _frames(10, 6)
    with pytest.raises(InvalidInput, match="current must be a pandas DataFrame"):
        drift(ref, {"age": [1]})
    with pytest.raises(InvalidInput, match="reference must be a pandas DataFrame"):
        drift([1, 2], ref)


def test_methods_and_primary_choose_the_rows_and_what_counts() -> None:
    ref, cur = _frames(2_000, 7, shift=0.3)
    r = drift(ref, cur, methods=["ks", "chi_square"])
    assert set(r.features["method"]) == {"ks", "chi_square"}
    assert r.counted == {"numeric": "ks", "categorical": "chi_square"}
    only_numbers = drift(ref, cur, methods=["ks"])
    plan = only_numbers.features[only_numbers.features["feature"] == "plan"]
    assert plan["status"].tolist() == ["no_method"]
    assert "add one of psi" in plan["detail"].iloc[0]
    r2 = drift(ref, cur, primary={"numeric": "psi"})
    assert r2.counted["numeric"] == "psi"


def test_statuses_for_bad_input_are_defined_and_explained() -> None:
    n = 400
    rng = np.random.default_rng(8)
    ref = pd.DataFrame(
        {
            "const": np.full(n, 5.0),
            "nulls": np.full(n, np.nan),
            "gone": rng.normal(size=n),
            "went_null": rng.normal(size=n),
            "typed": rng.normal(size=n),
            "one_cat": ["a"] * n,
            "cat": rng.choice(["x", "y"], n),
        }
    )
    cur = pd.DataFrame(
        {
            "const": np.full(n, 5.0),
            "nulls": np.full(n, np.nan),
            "went_null": np.full(n, np.nan),
            "typed": ["text"] * n,
            "one_cat": ["a"] * (n - 10) + ["b"] * 10,
            "cat": rng.choice(["x", "y", "z"], n),
            "new": rng.normal(size=n),
        }
    )
    r = drift(ref, cur)
    status = {f: r.status_of(f) for f in [*ref.columns, "new"]}
    assert status == {
        "const": "constant",
        "nulls": "all_null",
        "gone": "missing_in_current",
        "went_null": "all_null",
        "typed": "type_mismatch",
        "one_cat": "constant",
        "cat": "ok",
        "new": "new_in_current",
    }
    f = r.features
    assert (f["detail"][f["status"] != "ok"].str.len() > 0).all()
    # NaN statistics appear only with a status that explains them
    nan_rows = f[f["statistic"].isna()]
    assert set(nan_rows["status"]) <= {
        "all_null",
        "missing_in_current",
        "new_in_current",
        "type_mismatch",
    }
    assert not _row(r, "const", "wasserstein")["drifted"]
    assert _row(r, "went_null", "wasserstein")["drifted"]  # a feature that stopped arriving
    assert not _row(r, "nulls", "wasserstein")["drifted"]
    assert _row(r, "went_null", "psi")["current_null_share"] == 1.0
    assert r.unseen_categories == {"one_cat": ["b"], "cat": ["z"]}
    assert "unseen in the reference" in str(_row(r, "cat", "psi")["detail"])
    assert r.compared == 5  # const, nulls, went_null, one_cat, cat
    assert "1 missing in current" in r.summary() and "1 type mismatch" in r.summary()
    json.dumps(r.to_dict(profiles=True), allow_nan=False)


def test_empty_windows() -> None:
    ref, cur = _frames(100, 9)
    r = drift(ref, cur.iloc[:0])
    assert set(r.features["status"]) == {"empty"}
    assert not r.features["drifted"].any()
    assert (r.drifted_share, r.dataset_drift, r.compared) == (0.0, False, 0)
    assert "4 empty" in r.summary()
    assert set(drift(ref.iloc[:0], cur).features["status"]) == {"empty"}
    assert set(drift(profile(ref.iloc[:0]), cur).features["status"]) == {"empty"}


def test_both_constant_columns_compare_their_values() -> None:
    ref = pd.DataFrame({"c": [1.0] * 50})
    same, other = (
        drift(ref, pd.DataFrame({"c": [1.0] * 30})),
        drift(ref, pd.DataFrame({"c": [2.0] * 30})),
    )
    assert not _row(same, "c", "wasserstein")["drifted"]
    assert _row(other, "c", "wasserstein")["statistic"] == pytest.approx(1.0)
    assert _row(other, "c", "ks")["drifted"]


def test_object_columns_of_numbers_compare_with_numbers() -> None:
    """Values parsed from JSON (the prediction log) arrive as object columns."""
    ref = pd.DataFrame({"x": np.arange(100.0)})
    cur = pd.DataFrame({"x": pd.Series([float(i) for i in range(100)] + [None], dtype=object)})
    r = drift(ref, cur)
    assert r.status_of("x") == "ok"
    assert _row(r, "x", "ks")["statistic"] == pytest.approx(0.0)


def test_to_dict_is_json_ready_without_nan() -> None:
    ref, cur = _frames(200, 10)
    d = drift(ref, cur, methods=["psi", "ks"]).to_dict()
    text = json.dumps(d, allow_nan=False)
    assert '"p_value": null' in text
    assert d["features"][0]["feature"] == "age"
    assert "reference" not in d


def test_a_profile_gives_the_dataframes_answers() -> None:
    ref, cur = _frames(20_000, 11, shift=0.08, m=6_000)
    exact = drift(ref, cur).features.set_index(["feature", "method"])
    stored = Profile.from_dict(json.loads(json.dumps(profile(ref).to_dict())))
    r = drift(stored, cur)
    approx = r.features.set_index(["feature", "method"])
    assert not r.exact
    same = ["psi", "jensen_shannon", "chi_square"]
    for key in exact.index:
        e, a = exact.loc[key], approx.loc[key]
        if key[1] in same:
            assert a["statistic"] == pytest.approx(e["statistic"], rel=1e-9), key
        elif key[1] == "ks":
            assert a["statistic"] == pytest.approx(e["statistic"], abs=3e-3), key
            assert a["p_value"] == pytest.approx(e["p_value"], rel=0.5, abs=1e-3), key
            assert "approximate" in a["detail"]
        else:  # wasserstein, in reference standard deviations
            assert a["statistic"] == pytest.approx(e["statistic"], abs=0.01), key
    assert r.drifted_features == drift(ref, cur).drifted_features


@settings(deadline=None, max_examples=40)
@given(
    st.integers(0, 10_000),
    st.floats(0.1, 10),
    st.floats(-5, 5),
    st.integers(20, 300),
)
def test_distances_are_zero_on_identical_data_and_scale_invariant(
    seed: int, scale: float, shift: float, n: int
) -> None:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b", "c"], n)})
    cur = pd.DataFrame({"x": rng.normal(0.3, 1, n), "c": rng.choice(["a", "b", "d"], n)})
    same = drift(ref, ref).features
    assert (same["statistic"][same["method"] != "chi_square"].abs() < 1e-9).all()
    assert not same["drifted"].any()
    r = drift(ref, cur).features.set_index(["feature", "method"])["statistic"]
    moved = drift(_affine(ref, scale, shift), _affine(cur, scale, shift)).features
    moved = moved.set_index(["feature", "method"])["statistic"]
    for method in ("psi", "ks", "wasserstein", "jensen_shannon"):
        assert moved[("x", method)] == pytest.approx(r[("x", method)], rel=1e-6, abs=1e-9)
    assert (r >= -1e-12).all()
    assert r[("x", "jensen_shannon")] <= 1 and r[("c", "jensen_shannon")] <= 1


def _affine(df: pd.DataFrame, scale: float, shift: float) -> pd.DataFrame:
    out = df.copy()
    out["x"] = out["x"] * scale + shift
    return out


def test_column_names_compare_as_text() -> None:
    rng = np.random.default_rng(12)
    ref = pd.DataFrame({0: rng.normal(size=300), "b": rng.normal(size=300)})
    cur = pd.DataFrame({"0": rng.normal(size=300), "b": rng.normal(size=300)})
    r = drift(ref, cur)
    assert r.status_of("0") == "ok" and r.compared == 2
    with pytest.raises(InvalidInput, match="duplicate column names: 0"):
        drift(pd.DataFrame([[1, 2]], columns=[0, "0"]), cur)


def test_categorical_names_are_checked_with_a_profile_too() -> None:
    ref, cur = _frames(100, 13)
    stored = profile(ref)
    with pytest.raises(InvalidInput, match="neither frame"):
        drift(stored, cur, categorical=["ghost"])
    cur["zone"] = 3
    r = drift(stored, cur, categorical=["zone", "age"])  # age keeps the profile's kind
    kinds = r.features.groupby("feature")["kind"].first().to_dict()
    assert kinds["zone"] == "categorical" and kinds["age"] == "numeric"


@settings(deadline=None, max_examples=15)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(["normal", "lognormal", "poisson", "mixed"]),
    st.integers(2_000, 20_000),
    st.integers(500, 12_000),
    st.floats(0, 0.5),
)
def test_profile_answers_are_close_to_exact_ones(
    seed: int, family: str, n: int, m: int, shift: float
) -> None:
    rng = np.random.default_rng(seed)

    def sample(size: int, s: float) -> np.ndarray:
        if family == "normal":
            return rng.normal(s, 1, size)
        if family == "lognormal":
            return rng.lognormal(s, 1, size)
        if family == "poisson":
            return rng.poisson(3 + s * 2, size).astype(float)
        return np.where(rng.random(size) < 0.4, 0.0, rng.normal(5 + s, 2, size))

    ref, cur = pd.DataFrame({"x": sample(n, 0)}), pd.DataFrame({"x": sample(m, shift)})
    exact = drift(ref, cur).features.set_index("method")
    approx = drift(profile(ref), cur).features.set_index("method")
    for method in ("psi", "jensen_shannon"):
        assert approx.loc[method, "statistic"] == pytest.approx(exact.loc[method, "statistic"])
    assert approx.loc["ks", "statistic"] == pytest.approx(exact.loc["ks", "statistic"], abs=3e-3)
    assert approx.loc["wasserstein", "statistic"] == pytest.approx(
        exact.loc["wasserstein", "statistic"], abs=0.02
    )
