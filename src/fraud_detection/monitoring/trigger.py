"""What `fraud monitor --on-drift` does when the drift rule fires: retrain here, or ask GitHub
Actions to, at most once per cooldown; every trigger and every skip goes to the event trail."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests

from ..errors import FraudError, TriggerError
from ..registry import CHAMPION, Registry
from .drift import MonitorResult

ACTIONS = ("retrain", "dispatch")
TRIGGERED = "retrain_triggered"
SKIPPED = "retrain_skipped"
COOLDOWN = timedelta(days=3)
"""A drift that retraining cannot fix (a broken feed, a new fraud pattern the labels have not
caught up with) must not retrain every day: three days leaves room for labels to arrive."""
GITHUB_API_VERSION = "2022-11-28"


@dataclass(frozen=True)
class WorkflowDispatch:
    """The GitHub Actions workflow to run, and how to reach GitHub's REST API."""

    repository: str
    token: str
    workflow: str = "retrain.yml"
    ref: str = "main"
    api_url: str = "https://api.github.com"

    def send(self, reason: str) -> None:
        """POST the workflow-dispatch request GitHub documents; it answers 204."""
        url = (
            f"{self.api_url.rstrip('/')}/repos/{self.repository}/actions/workflows/"
            f"{self.workflow}/dispatches"
        )
        headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self.token}",
            "X-GitHub-Api-Version": GITHUB_API_VERSION,
        }
        # Workflow inputs are strings of bounded size: the reason is cut to fit.
        body: dict[str, Any] = {"ref": self.ref, "inputs": {"reason": reason[:1000]}}
        try:
            response = requests.post(url, json=body, headers=headers, timeout=30)
        except requests.RequestException as exc:
            raise TriggerError(f"could not reach GitHub at {self.api_url}: {exc}") from exc
        if response.status_code != 204:
            raise TriggerError(
                f"GitHub refused the dispatch of {self.workflow} in {self.repository}: "
                f"{response.status_code} {response.text[:300]}"
            )


def last_trigger(registry: Registry) -> datetime | None:
    """When drift last triggered a retrain, from the event trail."""
    times = [datetime.fromisoformat(e["timestamp"]) for e in registry.events()
             if e["action"] == TRIGGERED]  # fmt: skip
    return max(times) if times else None


def act_on_drift(
    result: MonitorResult,
    registry: Registry,
    action: str,
    *,
    now: datetime,
    cooldown: timedelta = COOLDOWN,
    retrain: Callable[[], object],
    dispatch: WorkflowDispatch | None,
) -> str | None:
    """Start a retrain when drift was detected and no trigger fired within the cooldown.

    Returns what was done ("retrain_triggered" or "retrain_skipped"), None without drift.
    """
    if not result.drift_detected:
        return None
    version = registry.resolve(CHAMPION)
    reason = "drift: " + "; ".join(result.reasons)
    details = {"via": action, "reasons": result.reasons}
    last = last_trigger(registry)
    if last is not None and now - last < cooldown:
        why = f"cooldown: drift triggered a retrain at {last:%Y-%m-%d %H:%M} UTC, within {cooldown}"
        registry.note(SKIPPED, version=version, reason=why, details=details)
        return SKIPPED
    registry.note(TRIGGERED, version=version, reason=reason, details=details)
    if action == "dispatch":
        if dispatch is None:
            raise TriggerError(
                "--on-drift dispatch needs GITHUB_TOKEN and GITHUB_REPOSITORY (owner/name)"
            )
        dispatch.send(reason)
    else:
        try:
            retrain()
        except FraudError as exc:
            raise TriggerError(f"the drift-triggered retrain failed: {exc}") from exc
    return TRIGGERED
