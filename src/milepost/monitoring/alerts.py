"""Emitting alerts: one log line each, and one webhook POST per run.

Every alert is logged at WARNING on the ``milepost.monitoring`` logger::

    ALERT monitor=churn-drift feature_drift psi[age]=0.31 >= 0.2 (1,000 rows)

A monitor with a webhook URL gets one ``POST`` per run that raised alerts, with a JSON
body ``{"monitor", "run_id", "run_at", "window_start", "window_end", "alerts": [...]}``
(each alert as :meth:`~milepost.monitoring.monitors.Alert.to_dict`, times in epoch ms).
A 2xx answer marks the alerts delivered; any other answer, a refused connection or no
answer within ``timeout`` seconds marks them not delivered with the reason. Delivery never
raises: a monitor run does not fail because a webhook is down.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any

from milepost._records import jsonable

__all__ = ["LOGGER", "WEBHOOK_TIMEOUT", "alert_message", "post_webhook"]

LOGGER = logging.getLogger("milepost.monitoring")
# A library's log lines reach the handlers the application configures (the root's, by
# propagation); with none configured they are not printed by Python's last-resort
# handler: the CLI and the demo print alerts themselves.
LOGGER.addHandler(logging.NullHandler())

#: Seconds a webhook has to answer.
WEBHOOK_TIMEOUT = 5.0


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def alert_message(
    monitor: str,
    check: str,
    metric: str,
    feature: str | None,
    value: float | None,
    threshold: float | None,
    direction: str,
    rows: int,
) -> str:
    """One line saying what crossed what (``psi[age]=0.31 >= 0.2``, ``ks[age]=0.001 <
    0.05``)."""
    target = f"{metric}[{feature}]" if feature else metric
    sign = ">=" if direction == "above" else "<"
    return (
        f"monitor={monitor} {check} {target}={_num(value)} {sign} {_num(threshold)} ({rows:,} rows)"
    )


def post_webhook(url: str, body: dict[str, Any], *, timeout: float = WEBHOOK_TIMEOUT) -> str | None:
    """POST ``body`` as JSON; ``None`` when the URL answered 2xx, else what went wrong."""
    data = json.dumps(jsonable(body)).encode()
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked at create
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "milepost-monitor"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"not delivered: {reason}"
    return None if 200 <= status < 300 else f"HTTP {status}"
