"""The monitoring report: content, escaping, no external reference, size, bad input."""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from milepost.demo.data import CATEGORICAL, NUMERIC, generate_customers
from milepost.errors import InvalidInput
from milepost.monitoring import drift, profile, render_report, report_json, write_report

T0 = datetime(2026, 3, 1, tzinfo=UTC)
EVIL = "<script>alert('x')</script>"


def _drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    categorical: list[str],
    methods: list[str] | None = None,
) -> Any:
    return drift(reference, current, categorical=categorical or None, methods=methods)


@pytest.fixture(scope="module")
def shifted() -> Any:
    """Real customer data, the current side generated with a strong shift."""
    cols = NUMERIC + CATEGORICAL
    ref = generate_customers(4000, seed=1)[cols]
    cur = generate_customers(3000, seed=2, shift=1.0)[cols]
    return _drift(ref, cur, CATEGORICAL)


def _history(features: list[str], n: int = 24) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        when = T0 + timedelta(hours=i)
        for f in features:
            out.append(
                {
                    "time": when,
                    "feature": f,
                    "method": "psi",
                    "statistic": 0.01 * i,
                    "threshold": 0.2,
                }
            )
            out.append(
                {
                    "time": when,
                    "feature": f,
                    "method": "ks",
                    "statistic": 0.02 * i,
                    "p_value": 0.5 / (i + 1),
                    "threshold": 0.05,
                }
            )
    return out


def _performance(n: int = 24) -> pd.DataFrame:
    times = [T0 + timedelta(hours=i) for i in range(n)]
    realised = [0.9 - 0.005 * i if i < n - 4 else None for i in range(n)]  # late labels
    return pd.DataFrame(
        {
            "time": times,
            "metric": "accuracy",
            "value": realised,
            "estimated": [0.89 - 0.004 * i for i in range(n)],
        }
    )


def _visible_text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def test_summary_numbers_agree_with_the_table_and_each_other(shifted: Any) -> None:
    content = report_json(shifted, current_window=(T0, T0 + timedelta(days=1)))
    table = shifted.features
    s = content["summary"]
    assert s["features"] == shifted.compared == len(NUMERIC + CATEGORICAL)
    assert s["drifted_names"] == list(shifted.drifted_features)
    assert s["drifted_features"] == len(shifted.drifted_features) > 0
    assert s["drifted_share"] == pytest.approx(s["drifted_features"] / s["features"])
    assert s["drifted_share"] == pytest.approx(shifted.drifted_share)
    assert s["tests"] == len(table)
    assert s["drifted_tests"] == int(table["drifted"].sum())
    assert s["dataset_drift"] is bool(shifted.dataset_drift)
    assert s["reference"]["rows"] == 4000
    assert s["current"]["rows"] == 3000
    assert s["current"]["window"] == "2026-03-01 00:00:00 to 2026-03-02 00:00:00 (UTC)"
    assert s["reference"]["window"] == "not given"

    html = render_report(shifted, current_window=(T0, T0 + timedelta(days=1)))
    text = " ".join(_visible_text(html).split())
    k, n = s["drifted_features"], s["features"]
    assert f"{k} of {n} features ({k / n:.1%})" in text
    verdict = (
        "Drift detected"
        if shifted.dataset_drift
        else "Some features drifted"
        if k
        else "No drift detected"
    )
    assert verdict in text
    assert f"Drifted: {', '.join(shifted.drifted_features)}." in text
    assert "4,000 rows" in text
    assert "3,000 rows" in text
    assert "Window: not given" in text
    assert "Window: 2026-03-01 00:00:00 to 2026-03-02 00:00:00 (UTC)" in text


def test_every_feature_and_method_has_a_row_and_a_plot(shifted: Any) -> None:
    html = render_report(shifted)
    rows = re.findall(r"<tr class=\"(drifted|)\">(.*?)</tr>", html, flags=re.S)
    assert len(rows) == len(shifted.features)
    for (cls, cells), rec in zip(rows, shifted.features.to_dict("records"), strict=True):
        values = [
            re.sub(r"<span.*?</span>|<div.*?</div>", "", c).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", cells, flags=re.S)
        ]
        assert values[0] == rec["feature"]
        assert values[2] == rec["method"]
        assert values[3] == f"{rec['statistic']:.4g}"
        assert values[4] == ("-" if math.isnan(rec["p_value"]) else f"{rec['p_value']:.4g}")
        assert (cls == "drifted") is rec["drifted"]
    for name in NUMERIC + CATEGORICAL:
        svg = re.search(rf'<svg class="chart dist"[^>]*data-feature="{name}"', html)
        assert svg is not None, name
    panels = re.findall(r'<svg class="chart dist"[^>]*data-feature="([^"]+)"', html)
    drifted = list(shifted.drifted_features)
    assert panels[: len(drifted)] == drifted  # drifted features first, in table order
    assert panels[len(drifted) :] == [n for n in NUMERIC + CATEGORICAL if n not in drifted]


def test_numeric_plot_comes_from_quantiles_and_shows_the_shift() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 20_000)})
    cur = pd.DataFrame({"x": rng.normal(1.5, 1, 20_000)})
    plot = report_json(_drift(ref, cur, []))["distributions"]["x"]["plot"]
    edges, r, c = plot["edges"], plot["reference"], plot["current"]
    assert len(edges) == len(r) + 1 == len(c) + 1 == 41
    # the bins span the 1st percentile of the lower side to the 99th of the upper one
    assert edges[0] == pytest.approx(-2.33, abs=0.1)
    assert edges[-1] == pytest.approx(1.5 + 2.33, abs=0.1)
    assert sum(r) == pytest.approx(0.99, abs=0.01)  # the reference's top 1% is cut off
    assert sum(c) == pytest.approx(0.99, abs=0.01)
    centres = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
    mean = [sum(m * x for m, x in zip(side, centres, strict=True)) / sum(side) for side in (r, c)]
    assert mean[0] == pytest.approx(0.0, abs=0.1)
    assert mean[1] == pytest.approx(1.5, abs=0.1)


def test_categories_past_the_top_ten_go_to_other_and_new_ones_are_marked() -> None:
    ref = pd.DataFrame({"c": [f"k{i:02d}" for i in range(15)] * 20})
    cur = pd.DataFrame({"c": [f"k{i:02d}" for i in range(15)] * 20 + ["brand-new"] * 100})
    content = report_json(_drift(ref, cur, ["c"]))
    plot = content["distributions"]["c"]["plot"]
    assert len(plot["categories"]) == 11
    assert plot["categories"][0] == "brand-new"
    assert plot["new"][0] is True
    assert plot["categories"][-1] == "other (6)"  # 16 categories, 10 shown
    assert sum(plot["reference"]) == pytest.approx(1.0)
    assert sum(plot["current"]) == pytest.approx(1.0)
    assert plot["reference"][-1] == pytest.approx(6 / 15)
    assert plot["new_categories"] == ["brand-new"]
    html = render_report(_drift(ref, cur, ["c"]))
    assert "brand-new (new)" in html
    assert "New in current: brand-new." in html


def test_everything_is_escaped_and_nothing_is_fetched() -> None:
    ref = pd.DataFrame({EVIL: np.arange(100.0), "cat": ["<b>bold</b>"] * 100})
    cur = pd.DataFrame({EVIL: np.arange(100.0) + 50, "cat": ["<img src=x>"] * 100})
    result = _drift(ref, cur, ["cat"])
    html = render_report(
        result,
        title=f"Title {EVIL}",
        history=_history([EVIL]),
        performance=[{"time": T0, "metric": EVIL, "value": 0.5}],
        alerts=[{"time": T0, "message": EVIL}],
        reference_window=EVIL,
    )
    assert "<script" not in html.lower()
    assert "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html or (
        "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    )
    # self-contained: no URL, no fetched resource of any kind
    tags = _Tags()
    tags.feed(html)
    assert tags.names <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "header",
        "p",
        "span",
        "section",
        "h1",
        "h2",
        "h3",
        "div",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "svg",
        "g",
        "line",
        "text",
        "polyline",
        "rect",
        "circle",
    }, tags.names
    assert not tags.refs, tags.refs
    style = html[html.index("<style>") : html.index("</style>")]
    assert "url(" not in style and "@import" not in style and "//" not in style


class _Tags(HTMLParser):
    """The tag names in a page, and any attribute that could make a browser fetch."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.refs: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.add(tag)
        for name, value in attrs:
            fetches = name in {"src", "href", "xlink:href", "srcset", "action", "data"}
            if fetches or "//" in (value or "") or "url(" in (value or ""):
                self.refs.append((tag, name, value))


def test_size_does_not_grow_with_rows() -> None:
    rng = np.random.default_rng(11)

    def frames(n: int, shift: float) -> pd.DataFrame:
        data: dict[str, Any] = {
            f"n{i}": rng.normal(shift * i / 10, 1 + i / 10, n) for i in range(10)
        }
        for i in range(5):
            codes = rng.integers(0, 4 + i, n)
            data[f"c{i}"] = pd.Categorical.from_codes(codes, list("abcdefghijklmnop"[: 4 + i]))
        return pd.DataFrame(data)

    cats = [f"c{i}" for i in range(5)]
    sizes = []
    for n in (10_000, 1_000_000):
        result = _drift(frames(n, 0.0), frames(n, 0.3), cats, methods=["psi"])
        html = render_report(result, history=_history(["n1", "c1"]), performance=_performance())
        data = json.dumps(report_json(result, history=_history(["n1", "c1"])))
        sizes.append((len(html.encode()), len(data.encode())))
    (h_small, j_small), (h_big, j_big) = sizes
    assert h_big < 2_000_000 and j_big < 2_000_000
    assert abs(h_big - h_small) / h_small < 0.05, sizes
    assert abs(j_big - j_small) / j_small < 0.05, sizes


def test_history_draws_p_values_for_tests_and_statistics_for_distances(shifted: Any) -> None:
    content = report_json(shifted, history=_history(["age"]), performance=_performance())
    assert {p["method"] for p in content["history"]} == {"psi", "ks"}
    assert content["history"][0]["time"] == "2026-03-01T00:00:00+00:00"
    html = render_report(shifted, history=_history(["age"]), performance=_performance())
    section = html[html.index('id="history"') : html.index('id="performance"')]
    assert section.count('<svg class="chart trend"') == 2
    assert "age · psi" in section and "age · ks" in section
    assert "drift above the threshold" in section and "drift below the threshold" in section
    assert 'aria-label="p-value"' not in section  # the y label is text, not a title
    assert section.count('stroke-dasharray="5 3"') >= 2  # a threshold line on each chart

    perf = html[html.index('id="performance"') :]
    assert perf.count('<svg class="chart trend"') == 1
    assert ">estimated<" in perf and ">realised<" in perf
    points = content["performance"]
    assert sum(p["kind"] == "realised" for p in points) == 20  # 4 still unlabelled
    assert sum(p["kind"] == "estimated" for p in points) == 24


def test_long_history_is_thinned_to_a_bounded_number_of_points(shifted: Any) -> None:
    long = [
        {"time": i * 60_000, "feature": "age", "method": "psi", "statistic": i % 7 / 10}
        for i in range(5000)
    ]
    points = report_json(shifted, history=long)["history"]
    assert len(points) == 500
    assert points[0]["time_ms"] == 0 and points[-1]["time_ms"] == 4999 * 60_000


def test_missing_and_empty_columns_say_so_instead_of_crashing() -> None:
    ref = pd.DataFrame(
        {"gone": [1.0, 2.0, 3.0], "empty": [None, None, None], "const": [5.0, 5.0, 5.0]}
    )
    cur = pd.DataFrame({"empty": [None, None, None], "const": [5.0, 5.0, 5.0]})
    result = _drift(ref, cur, [])
    html = render_report(result)
    assert re.search(r"<td>missing_in_current", html)
    assert "column absent" in html
    assert "no values to plot" in html
    assert "1 feature(s) not compared" in html
    content = report_json(result)
    assert (
        content["distributions"]["const"]["plot"]["reference"]
        == content["distributions"]["const"]["plot"]["current"]
    )
    json.dumps(content, allow_nan=False)  # NaN became null


def test_write_report_writes_html_and_json_side_by_side(shifted: Any, tmp_path: Path) -> None:
    html_path, json_path = write_report(
        tmp_path / "out" / "drift.json", shifted, history=_history(["age"])
    )
    assert html_path == tmp_path / "out" / "drift.html"
    assert json_path == tmp_path / "out" / "drift.json"
    data = json.loads(json_path.read_text())
    assert data["summary"] == report_json(shifted)["summary"]
    assert html_path.read_text().startswith("<!doctype html>")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["drift.html", "drift.json"]


def test_bad_input_is_refused_with_a_hint(shifted: Any) -> None:
    with pytest.raises(InvalidInput, match="no features table") as err:
        render_report(object())  # type: ignore[arg-type]
    assert "milepost.monitoring.drift" in (err.value.hint or "")
    with pytest.raises(InvalidInput, match=r"history\[0\] has no statistic"):
        report_json(shifted, history=[{"time": T0, "feature": "age", "method": "psi"}])
    with pytest.raises(InvalidInput, match="is not a time"):
        report_json(shifted, performance=[{"time": "yesterday", "metric": "auc", "value": 1}])
    with pytest.raises(InvalidInput, match="not a mapping"):
        report_json(shifted, alerts=["psi too high"])


def test_a_test_without_p_values_is_not_drawn_against_its_alpha(shifted: Any) -> None:
    points = [
        {"time": T0, "feature": "age", "method": "chi_square", "statistic": 12.0,
         "threshold": 0.05},
        {"time": T0, "feature": "plan", "method": "psi", "statistic": 0.3, "threshold": None},
    ]  # fmt: skip
    html = render_report(shifted, history=points)
    section = html[html.index('id="history"') : html.index('id="performance"')]
    assert section.count('<svg class="chart trend"') == 2  # one point each still draws
    assert "statistic only: no p-values or threshold given" in section
    assert "no threshold given" in section
    assert 'stroke-dasharray="5 3"' not in section
    assert "nan" not in section.lower()


def test_performance_over_time_table_is_drawn_as_it_comes(shifted: Any) -> None:
    from milepost.monitoring import performance_over_time

    rng = np.random.default_rng(5)
    n = 600
    p1 = rng.uniform(0, 1, n)
    labels = (rng.uniform(0, 1, n) < p1).astype(int).astype(object)
    labels[-100:] = None  # the last hour's labels have not arrived
    frame = pd.DataFrame(
        {
            "ts": [T0 + timedelta(seconds=30 * i) for i in range(n)],
            "prediction": (p1 > 0.5).astype(int),
            "label": labels,
            "probabilities": [[1 - p, p] for p in p1],
        }
    )
    table = performance_over_time(frame, task="classification", window="1h", classes=[0, 1])
    content = report_json(shifted, performance=table)
    metrics = {(p["metric"], p["kind"]) for p in content["performance"]}
    assert ("accuracy", "realised") in metrics and ("roc_auc", "realised") in metrics
    assert ("accuracy", "estimated (not valid)") in metrics  # no calibration check given
    assert ("share_labelled", "labelled so far") in metrics
    windows = len(table)
    share = [p["value"] for p in content["performance"] if p["metric"] == "share_labelled"]
    assert len(share) == windows and share[-1] < 1.0
    html = render_report(shifted, performance=table)
    perf = html[html.index('id="performance"') :]
    assert ">estimated (not valid)<" in perf
    assert perf.count('<svg class="chart trend"') == len({m for m, _ in metrics})


def test_the_domain_classifier_verdict_is_in_the_summary() -> None:
    from milepost.monitoring import domain_classifier_drift

    cols = ["age", "monthly_spend", "support_tickets", "plan"]
    ref = generate_customers(1500, seed=1)[cols]
    cur = generate_customers(1500, seed=2, shift=1.0)[cols]
    result = _drift(ref, cur, ["plan"])
    classifier = domain_classifier_drift(ref, cur, categorical=["plan"], folds=3)
    content = report_json(result, multivariate=classifier)
    m = content["multivariate"]
    assert m["auc"] == pytest.approx(classifier.auc)
    assert m["drifted"] is classifier.drifted
    assert [t["feature"] for t in m["top_features"]] == classifier.top_features[:10]
    html = render_report(result, multivariate=classifier)
    card = " ".join(_visible_text(html[html.index('id="multivariate"') :]).split())
    assert f"AUC {classifier.auc:.4g}" in card
    assert (
        f"Columns that separate them most (AUC drop when shuffled): {classifier.top_features[0]}"
        in card
    )
    assert report_json(result)["multivariate"] is None
    with pytest.raises(InvalidInput, match="not a domain classifier result"):
        report_json(result, multivariate={"score": 1})


def test_a_result_from_a_stored_profile_says_it_is_approximate(shifted: Any) -> None:
    ref = generate_customers(2000, seed=1)[NUMERIC + CATEGORICAL]
    cur = generate_customers(1000, seed=2, shift=1.0)[NUMERIC + CATEGORICAL]
    stored = drift(profile(ref), cur)
    assert stored.exact is False
    content = report_json(stored)
    assert content["summary"]["exact"] is False
    assert content["summary"]["reference"]["rows"] == 2000
    html = render_report(stored)
    assert "From a stored profile: KS and Wasserstein approximate." in html
    assert "From a stored profile" not in render_report(shifted)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"history": 5},
        {"history": "psi"},
        {"history": [1, 2]},
        {"history": {"time": T0}},
        {"history": [{"time": None, "feature": "a", "method": "psi", "statistic": 1}]},
        {"performance": [{"time": [], "metric": "auc", "value": 1}]},
        {"alerts": 5},
        {"alerts": "fire"},
        {"current_window": (T0,)},
        {"current_window": 5},
        {"reference_window": ("x", "y")},
        {"multivariate": 3},
    ],
    ids=repr,
)
def test_junk_options_are_invalid_input(shifted: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        render_report(shifted, **kwargs)


def test_junk_results_are_invalid_input() -> None:
    class Table:
        features = pd.DataFrame({"feature": ["a"], "statistic": [1.0]})

    for junk in (None, 1, "drift", pd.DataFrame(), Table()):
        with pytest.raises(InvalidInput):
            render_report(junk)
    odd = pd.DataFrame(
        [{"feature": 1, "kind": None, "method": "m", "statistic": "high", "p_value": None,
          "threshold": "x", "drifted": None}]
    )  # fmt: skip

    class Odd:
        features = odd

    html = render_report(Odd())  # odd values print as text, nothing crashes
    assert ">high<" in html


def test_a_monitors_stored_results_feed_history_and_performance(shifted: Any) -> None:
    @dataclass(frozen=True)
    class Result:  # the shape `milepost monitor` stores one measured value in
        run_at: int
        check: str
        metric: str
        feature: str | None
        value: float | None
        threshold: float | None
        status: str = "ok"

        def to_dict(self) -> dict[str, Any]:
            return asdict(self)

    hour = 3_600_000
    results = []
    for i in range(6):
        t = 1_772_323_200_000 + i * hour
        results += [
            Result(t, "feature_drift", "psi", "age", 0.05 * i, 0.2),
            Result(t, "feature_drift", "ks", "age", 0.5 / (i + 1), 0.05),
            Result(t, "prediction_drift", "psi", None, 0.01 * i, 0.2),
            Result(t, "performance", "accuracy", None, 0.9 - 0.01 * i, None),
            Result(t, "feature_drift", "psi", "plan", None, 0.2, "empty"),  # measured nothing
        ]
    content = report_json(shifted, history=results, performance=results)
    series = {(p["feature"], p["method"]) for p in content["history"]}
    assert series == {("age", "psi"), ("age", "ks"), ("prediction_drift", "psi")}
    ks = [p for p in content["history"] if p["method"] == "ks"]
    assert [p["p_value"] for p in ks] == [0.5 / (i + 1) for i in range(6)]
    assert all(p["statistic"] is None for p in ks)
    assert [p["value"] for p in content["performance"]] == [0.9 - 0.01 * i for i in range(6)]
    html = render_report(shifted, history=results, performance=results)
    history = html[html.index('id="history"') : html.index('id="performance"')]
    assert history.count('<svg class="chart trend"') == 3
    assert "age · ks" in history and "drift below the threshold" in history
