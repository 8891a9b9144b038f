"""The monitoring report opened in headless Chromium, offline: plots render, nothing is
fetched, no console errors; a screenshot is kept next to the report.

The browser is ``offline_page`` of tests/e2e/conftest.py: Debian's Chromium
(``/usr/bin/chromium``, or ``MILEPOST_TEST_CHROMIUM``) through Playwright, with no
browser download. Without either the test is skipped locally with how to install them;
under ``CI=true`` it fails.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from milepost.demo.data import CATEGORICAL, NUMERIC, generate_customers
from milepost.monitoring import drift, write_report

EVIL = "<script>alert(1)</script>"


def _drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    categorical: list[str],
    methods: list[str] | None = None,
) -> Any:
    return drift(reference, current, categorical=categorical or None, methods=methods)


def _report(tmp_path: Path) -> tuple[Path, Any]:
    cols = NUMERIC + CATEGORICAL
    ref = generate_customers(3000, seed=1)[cols].rename(columns={"age": EVIL})
    cur = generate_customers(3000, seed=2, shift=1.0)[cols].rename(columns={"age": EVIL})
    result = _drift(ref, cur, CATEGORICAL)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    history = [
        {
            "time": t0 + timedelta(hours=i),
            "feature": f,
            "method": "psi",
            "statistic": 0.02 * i,
            "threshold": 0.2,
        }
        for i in range(24)
        for f in ("monthly_spend", EVIL)
    ]
    performance = [
        {
            "time": t0 + timedelta(hours=i),
            "metric": "roc_auc",
            "value": 0.86 - 0.004 * i,
            "estimated": 0.85 - 0.003 * i,
        }
        for i in range(24)
    ]
    html, _ = write_report(
        tmp_path / "report.html",
        result,
        title="Churn model: drift",
        history=history,
        performance=performance,
        alerts=[{"time": t0, "monitor": "churn-drift", "message": "PSI above 0.2"}],
        current_window=(t0, t0 + timedelta(days=1)),
    )
    return html, result


def test_report_renders_offline_in_headless_chromium(
    tmp_path: Path, offline_page: Callable[..., Any]
) -> None:
    html, result = _report(tmp_path)
    with offline_page(html) as opened:
        page = opened.page
        assert page.title() == "Churn model: drift"
        verdict = page.locator("#verdict").inner_text()
        drifted = len(result.drifted_features)
        assert verdict == (
            "Drift detected"
            if result.dataset_drift
            else "Some features drifted"
            if drifted
            else "No drift detected"
        )
        share = page.locator("#drifted-share").inner_text()
        assert share.startswith(f"{len(result.drifted_features)} of 10 features"), share
        # one distribution plot per feature, laid out with a real size
        for name in [EVIL, *NUMERIC[1:], *CATEGORICAL]:
            svg = page.locator(f"svg.dist[data-feature='{name}']")
            assert svg.count() == 1, name
            box = svg.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 50, name
            assert svg.locator("polyline, rect").count() >= 2, name
        # the feature named like a script is text on the page, and never ran
        assert page.get_by_text(EVIL, exact=True).count() >= 1
        trends = page.locator("#history svg.trend")
        assert trends.count() == 2
        assert page.locator("#performance svg.trend").count() == 1
        for i in range(trends.count()):
            box = trends.nth(i).bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 50
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
