"""Safe rollout (SPEC section 16): a new version takes the champion's traffic in steps, and each
step is judged against the champion's own rows of the same period. Pure decisions over counts
and a clock the caller passes in; reading the log and moving aliases live in rollout_run.py.

A step is judged once the canary has `min_rows` rows in it. Any check in breach then aborts at
once; a step without a breach advances once it has also lasted `min_duration`. A check only
breaches on evidence: the flag-rate ratio's interval must lie wholly outside its band, and a
figure that cannot be measured is `unknown`, never a pass or a breach. Passing the last step
below 100% completes the rollout: the canary becomes champion.
"""

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import numpy as np

from .errors import UsageError
from .monitoring.drift import psi_of_counts
from .monitoring.maturity import wilson

DEFAULT_STEPS = (0.05, 0.25, 0.5, 1.0)
RESAMPLES = 2000
SEED = 0
LEVEL = 0.99
"""The flag-rate ratio's interval. A step is judged again at every `fraud rollout step` while
it holds, and each look is another chance of a false abort: at 99% a canary as good as the
champion is aborted in 0.6-1.0% of steps judged 10 times, one flagging 10x in 80% of steps by
300 canary rows and 99% by 1,000 (benchmarks/RESULTS.md, "Safe rollout: the flag-rate
check")."""

State = Literal["open", "completed", "aborted"]
Action = Literal["advance", "complete", "hold", "abort"]
Status = Literal["pass", "breach", "unknown"]


def parse_steps(text: str) -> tuple[float, ...]:
    """`5,25,50,100` (percent) or `0.05,0.25,0.5,1` (shares): increasing shares ending at 1."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise UsageError(f"--steps {text!r}: give comma-separated percentages") from exc
    shares = [v / 100 for v in values] if max(values, default=0) > 1 else values
    if not shares or any(b <= a for a, b in itertools.pairwise(shares)):
        raise UsageError(f"--steps {text!r}: the shares must increase")
    if shares[0] <= 0 or shares[-1] > 1:
        raise UsageError(f"--steps {text!r}: every share must be in (0, 100%]")
    return (*shares, 1.0) if shares[-1] < 1 else tuple(shares)


def parse_duration(text: str) -> float:
    """Seconds in `90s`, `30m`, `1h` or a plain number of seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError as exc:
        raise UsageError(f"duration {text!r}: use a number with s, m or h") from exc
    if seconds < 0:
        raise UsageError(f"duration {text!r} is negative")
    return seconds


@dataclass(frozen=True)
class Limits:
    """When a step may be judged and what breaches it (every field is a `fraud rollout start`
    option; the defaults are those stated in its help)."""

    min_duration_s: float = 3600.0
    """A step lasts at least this long: an hour of traffic covers the short daily cycles."""
    min_rows: int = 500
    """Canary rows a step needs before it is judged."""
    max_flag_ratio: float = 2.0
    """Breach when the canary's flag-rate ratio to the champion's has its whole interval above
    this, or below its inverse."""
    max_psi: float = 0.2
    """Breach when the PSI of the canary's scores against its own reference exceeds this (the
    drift rule's default)."""
    max_error_rate: float = 0.01
    """Breach when more than this share of the canary's scoring calls failed (Prometheus)."""
    max_p99_ratio: float = 2.0
    p99_slack_ms: float = 25.0
    """Breach when the canary's p99 latency exceeds the champion's times max_p99_ratio plus
    this slack (a few milliseconds of noise on a quiet service is not a regression)."""
    min_reviews: int = 30
    """Reviewed alerts each variant needs before alert precision is compared."""
    max_precision_drop: float = 0.2
    """Breach when the canary's alert precision, at its interval's upper bound, is below the
    champion's by more than this."""


@dataclass(frozen=True)
class Variant:
    """What one variant did in a step's period: from the prediction log (and Prometheus)."""

    rows: int = 0
    flagged: int = 0
    score_counts: tuple[int, ...] = ()
    """Rows per bin of the canary's reference score histogram (the canary only)."""
    p99_latency_ms: float | None = None
    errors: int | None = None
    """Failed scoring calls; None when unknown (the log holds answered rows only)."""
    calls: int | None = None
    """Scoring calls the error count is out of."""
    reviewed: int = 0
    confirmed: int = 0


@dataclass(frozen=True)
class Check:
    """One judged figure: its value (and interval), the limit and the verdict."""

    name: str
    status: Status
    value: float | None
    limit: str
    interval: tuple[float, float] | None = None
    note: str = ""


@dataclass(frozen=True)
class Decision:
    """What `fraud rollout step` does now, why, and with which figures."""

    action: Action
    reason: str
    checks: tuple[Check, ...] = ()
    time_left_s: float = 0.0
    rows_left: int = 0


@dataclass(frozen=True)
class Rollout:
    """A rollout's state as the store keeps it."""

    version: str
    champion: str
    steps: tuple[float, ...]
    started_at: datetime
    step_started_at: datetime
    limits: Limits = field(default_factory=Limits)
    step: int = 0
    """Index into `steps` of the step in progress."""
    state: State = "open"
    reason: str = ""
    ended_at: datetime | None = None
    judged: tuple[dict[str, Any], ...] = ()
    """Each finished step's decision and figures, oldest first."""

    @property
    def share(self) -> float:
        """The canary's traffic share now (0 once the rollout ended)."""
        return self.steps[self.step] if self.state == "open" else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = list(self.steps)
        data["judged"] = list(self.judged)
        for key in ("started_at", "step_started_at", "ended_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Rollout":
        times = {
            key: datetime.fromisoformat(data[key]) if data.get(key) else None
            for key in ("started_at", "step_started_at", "ended_at")
        }
        return cls(
            version=str(data["version"]),
            champion=str(data["champion"]),
            steps=tuple(float(s) for s in data["steps"]),
            limits=Limits(**data.get("limits", {})),
            step=int(data["step"]),
            state=data["state"],
            reason=str(data.get("reason", "")),
            judged=tuple(data.get("judged", ())),
            started_at=times["started_at"] or datetime.min,
            step_started_at=times["step_started_at"] or datetime.min,
            ended_at=times["ended_at"],
        )


def start(
    version: str, champion: str, now: datetime, steps: Sequence[float], limits: Limits
) -> Rollout:
    """A new rollout at its first step."""
    if version == champion:
        raise UsageError(f"version {version} is the champion already: nothing to roll out")
    if not steps or steps[0] >= 1.0:
        raise UsageError("a rollout needs at least one step below 100%")
    return Rollout(version, champion, tuple(steps), now, now, limits)


def flag_ratio(
    canary: Variant, champion: Variant, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float | None, tuple[float, float] | None]:
    """The canary's flag rate over the champion's, with a Bayesian-bootstrap interval.

    A rare event's plain bootstrap collapses when a variant flagged nothing (every resample
    is 0), so each resample draws each rate from Beta(flags + 0.5, rows - flags + 0.5): the
    Bayesian bootstrap of a 0/1 variable under Jeffreys' prior. Nothing flagged then means
    "a rate below about 2/rows", not "exactly 0"."""
    if canary.rows == 0 or champion.rows == 0:
        return None, None
    rng = np.random.default_rng(seed)
    a = rng.beta(canary.flagged + 0.5, canary.rows - canary.flagged + 0.5, resamples)
    b = rng.beta(champion.flagged + 0.5, champion.rows - champion.flagged + 0.5, resamples)
    ratios = a / b
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    point = (
        (canary.flagged + 0.5)
        / (canary.rows + 1)
        / ((champion.flagged + 0.5) / (champion.rows + 1))
    )
    return float(point), (float(low), float(high))


def check_flag_ratio(canary: Variant, champion: Variant, limits: Limits) -> Check:
    limit = f"interval within [{1 / limits.max_flag_ratio:.2f}, {limits.max_flag_ratio:.2f}]"
    point, interval = flag_ratio(canary, champion)
    if point is None or interval is None:
        return Check("flag_rate_ratio", "unknown", None, limit, note="no champion rows")
    outside = interval[0] > limits.max_flag_ratio or interval[1] < 1 / limits.max_flag_ratio
    note = (
        f"canary {canary.flagged}/{canary.rows} flagged, champion "
        f"{champion.flagged}/{champion.rows}"
    )
    return Check("flag_rate_ratio", "breach" if outside else "pass", point, limit, interval, note)


def check_psi(canary: Variant, reference_shares: Sequence[float], limits: Limits) -> Check:
    limit = f"<= {limits.max_psi}"
    if not reference_shares or sum(canary.score_counts) == 0:
        return Check("score_psi", "unknown", None, limit, note="no reference score bins")
    value = psi_of_counts(reference_shares, canary.score_counts)
    return Check("score_psi", "breach" if value > limits.max_psi else "pass", value, limit)


def check_errors(canary: Variant, limits: Limits) -> Check:
    limit = f"<= {limits.max_error_rate}"
    if canary.errors is None or not canary.calls:
        return Check(
            "error_rate",
            "unknown",
            None,
            limit,
            note="the log holds answered rows only: give --prometheus to measure errors",
        )
    rate = canary.errors / canary.calls
    return Check("error_rate", "breach" if rate > limits.max_error_rate else "pass", rate, limit)


def check_latency(canary: Variant, champion: Variant, limits: Limits) -> Check:
    if canary.p99_latency_ms is None or champion.p99_latency_ms is None:
        return Check("p99_latency_ms", "unknown", None, "-", note="no latency recorded")
    bound = champion.p99_latency_ms * limits.max_p99_ratio + limits.p99_slack_ms
    return Check(
        "p99_latency_ms",
        "breach" if canary.p99_latency_ms > bound else "pass",
        canary.p99_latency_ms,
        f"<= {bound:.1f} (champion {champion.p99_latency_ms:.1f} x {limits.max_p99_ratio:g} "
        f"+ {limits.p99_slack_ms:g})",
    )


def check_precision(canary: Variant, champion: Variant, limits: Limits) -> Check:
    """Alert precision from reviewed alerts, once both variants have enough reviews."""
    if min(canary.reviewed, champion.reviewed) < limits.min_reviews:
        return Check(
            "alert_precision",
            "unknown",
            None,
            f">= {limits.min_reviews} reviews each",
            note=f"reviewed alerts: canary {canary.reviewed}, champion {champion.reviewed}",
        )
    value = canary.confirmed / canary.reviewed
    interval = wilson(canary.confirmed, canary.reviewed)
    baseline = champion.confirmed / champion.reviewed
    floor = baseline - limits.max_precision_drop
    return Check(
        "alert_precision",
        "breach" if interval[1] < floor else "pass",
        value,
        f"upper bound >= {floor:.3f} (champion {baseline:.3f} - {limits.max_precision_drop:g})",
        interval,
        f"canary {canary.confirmed}/{canary.reviewed}, champion "
        f"{champion.confirmed}/{champion.reviewed} confirmed",
    )


def checks(
    canary: Variant, champion: Variant, reference_shares: Sequence[float], limits: Limits
) -> tuple[Check, ...]:
    """Every check of a step, in the order the report shows them."""
    return (
        check_flag_ratio(canary, champion, limits),
        check_psi(canary, reference_shares, limits),
        check_errors(canary, limits),
        check_latency(canary, champion, limits),
        check_precision(canary, champion, limits),
    )


def decide(
    rollout: Rollout,
    canary: Variant,
    champion: Variant,
    reference_shares: Sequence[float],
    now: datetime,
) -> Decision:
    """Advance, complete, hold or abort the step in progress."""
    limits = rollout.limits
    found = checks(canary, champion, reference_shares, limits)
    elapsed = (now - rollout.step_started_at).total_seconds()
    time_left = max(0.0, limits.min_duration_s - elapsed)
    rows_left = max(0, limits.min_rows - canary.rows)
    if rows_left:
        return Decision("hold", f"{rows_left} more canary rows needed", found, time_left, rows_left)
    breaches = [c for c in found if c.status == "breach"]
    if breaches:
        reason = "; ".join(f"{c.name} {figure_text(c)} breaks {c.limit}" for c in breaches)
        return Decision("abort", reason, found)
    if time_left:
        return Decision("hold", f"{_duration(time_left)} of the step left", found, time_left)
    share = rollout.steps[rollout.step]
    if rollout.step + 2 >= len(rollout.steps):  # the next step is 100%: the canary is champion
        return Decision("complete", f"passed the {share:.0%} step, the last below 100%", found)
    return Decision("advance", f"passed the {share:.0%} step", found)


def advanced(rollout: Rollout, decision: Decision, now: datetime) -> Rollout:
    """The rollout after `decision` was carried out at `now`."""
    record = {"step": rollout.step, "share": rollout.share, "ended_at": now.isoformat()}
    record |= {"action": decision.action, "reason": decision.reason}
    record["checks"] = [check_json(c) for c in decision.checks]
    judged = (*rollout.judged, record)
    if decision.action == "advance":
        return replace(rollout, step=rollout.step + 1, step_started_at=now, judged=judged)
    if decision.action in ("complete", "abort"):
        state: State = "completed" if decision.action == "complete" else "aborted"
        return replace(rollout, state=state, reason=decision.reason, ended_at=now, judged=judged)
    return rollout


def check_json(check: Check) -> dict[str, Any]:
    """A check as the store and the event trail keep it (JSON: the interval as a list)."""
    return {**asdict(check), "interval": list(check.interval) if check.interval else None}


def aborted_by_hand(rollout: Rollout, reason: str, now: datetime) -> Rollout:
    """The rollout after `fraud rollout abort`."""
    return advanced(rollout, Decision("abort", reason), now)


def figure_text(check: Check) -> str:
    """A check's value (and interval) as the report and `status` print it."""
    if check.value is None:
        return "?"
    text = f"{check.value:.3g}"
    if check.interval:
        text += f" [{check.interval[0]:.3g}, {check.interval[1]:.3g}]"
    return text


def _duration(seconds: float) -> str:
    minutes = math.ceil(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
