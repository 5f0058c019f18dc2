"""Each decision of a rollout step, judged with a clock the test sets (no real hours pass)."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from fraud_detection.errors import UsageError
from fraud_detection.reference import score_bins
from fraud_detection.rollout import (
    Limits,
    Rollout,
    Variant,
    advanced,
    decide,
    flag_ratio,
    parse_duration,
    parse_steps,
    start,
)

T0 = datetime(2030, 1, 1, 12, tzinfo=UTC)
LIMITS = Limits(min_duration_s=3600, min_rows=500)
# A reference score histogram and canary rows that match it exactly: PSI 0.
REFERENCE = [0.5, 0.2, 0.1, 0.05, 0.05, 0.03, 0.02, 0.02, 0.01, 0.01, 0.005, 0.005]
assert len(REFERENCE) == len(score_bins([0.1])["edges"]) + 1


def matching_counts(rows: int) -> tuple[int, ...]:
    counts = [round(share * rows) for share in REFERENCE]
    counts[0] += rows - sum(counts)
    return tuple(counts)


def canary(rows: int = 1000, flagged: int = 2, **changes: object) -> Variant:
    values: dict[str, object] = {
        "rows": rows,
        "flagged": flagged,
        "score_counts": matching_counts(rows),
        "p99_latency_ms": 8.0,
    }
    return Variant(**{**values, **changes})  # type: ignore[arg-type]


def champion(rows: int = 19_000, flagged: int = 38, **changes: object) -> Variant:
    return Variant(rows=rows, flagged=flagged, p99_latency_ms=8.0, **changes)  # type: ignore[arg-type]


def rollout(**changes: object) -> Rollout:
    return Rollout(
        **{  # type: ignore[arg-type]
            "version": "2",
            "champion": "1",
            "steps": (0.05, 0.25, 0.5, 1.0),
            "started_at": T0,
            "step_started_at": T0,
            "limits": LIMITS,
            **changes,
        }
    )


def test_a_step_holds_until_the_canary_has_its_minimum_rows() -> None:
    decision = decide(rollout(), canary(rows=120), champion(), REFERENCE, T0 + timedelta(hours=5))
    assert decision.action == "hold"
    assert decision.rows_left == 380
    assert "380 more canary rows" in decision.reason


def test_a_step_without_breach_holds_until_its_minimum_duration() -> None:
    decision = decide(rollout(), canary(), champion(), REFERENCE, T0 + timedelta(minutes=20))
    assert decision.action == "hold"
    assert decision.time_left_s == pytest.approx(40 * 60)
    assert {c.status for c in decision.checks} <= {"pass", "unknown"}


def test_a_passed_step_advances_to_the_next_share_from_now() -> None:
    now = T0 + timedelta(hours=1, seconds=1)
    state = rollout()
    decision = decide(state, canary(), champion(), REFERENCE, now)
    assert decision.action == "advance"
    after = advanced(state, decision, now)
    assert (after.step, after.share, after.step_started_at) == (1, 0.25, now)
    assert after.judged[-1]["action"] == "advance"
    assert after.state == "open"


def test_passing_the_last_step_below_100_completes() -> None:
    now = T0 + timedelta(hours=2)
    state = rollout(step=2)
    decision = decide(state, canary(), champion(), REFERENCE, now)
    assert decision.action == "complete"
    after = advanced(state, decision, now)
    assert (after.state, after.share, after.ended_at) == ("completed", 0.0, now)


def test_a_canary_flagging_ten_times_the_champion_aborts_before_the_step_ends() -> None:
    decision = decide(
        rollout(), canary(flagged=20), champion(), REFERENCE, T0 + timedelta(minutes=5)
    )
    assert decision.action == "abort"
    (ratio,) = [c for c in decision.checks if c.name == "flag_rate_ratio"]
    assert ratio.status == "breach"
    assert ratio.interval is not None and ratio.interval[0] > 2.0
    assert "flag_rate_ratio" in decision.reason


def test_a_canary_flagging_nothing_is_not_judged_on_a_rare_event() -> None:
    # 0 of 1000 against 2 per 1000: well inside chance, so never a breach.
    point, interval = flag_ratio(canary(flagged=0), champion())
    assert point is not None and interval is not None
    assert interval[0] < 0.5 < 1.0 < interval[1]
    decision = decide(rollout(), canary(flagged=0), champion(), REFERENCE, T0 + timedelta(hours=2))
    assert decision.action == "advance"


def test_scores_unlike_the_canarys_reference_abort() -> None:
    shifted = tuple(reversed(matching_counts(1000)))
    decision = decide(
        rollout(), canary(score_counts=shifted), champion(), REFERENCE, T0 + timedelta(hours=2)
    )
    assert decision.action == "abort"
    (psi,) = [c for c in decision.checks if c.name == "score_psi"]
    assert psi.status == "breach" and psi.value is not None and psi.value > 0.2


def test_scoring_errors_are_unknown_from_the_log_and_abort_from_prometheus() -> None:
    now = T0 + timedelta(hours=2)
    from_log = decide(rollout(), canary(), champion(), REFERENCE, now)
    (errors,) = [c for c in from_log.checks if c.name == "error_rate"]
    assert errors.status == "unknown" and "--prometheus" in errors.note
    failing = canary(errors=30, calls=1030)
    decision = decide(rollout(), failing, champion(errors=0, calls=19_000), REFERENCE, now)
    assert decision.action == "abort"
    assert "error_rate" in decision.reason


def test_a_slow_canary_aborts_and_noise_within_the_slack_does_not() -> None:
    now = T0 + timedelta(hours=2)
    slow = decide(rollout(), canary(p99_latency_ms=60.0), champion(), REFERENCE, now)
    assert slow.action == "abort" and "p99_latency_ms" in slow.reason
    noisy = decide(rollout(), canary(p99_latency_ms=30.0), champion(), REFERENCE, now)
    assert noisy.action == "advance"  # 30 <= 8 x 2 + 25


def test_alert_precision_is_compared_once_both_have_enough_reviews() -> None:
    now = T0 + timedelta(hours=2)
    few = decide(
        rollout(),
        canary(reviewed=10, confirmed=1),
        champion(reviewed=200, confirmed=180),
        REFERENCE,
        now,
    )
    (precision,) = [c for c in few.checks if c.name == "alert_precision"]
    assert precision.status == "unknown"
    worse = decide(
        rollout(),
        canary(reviewed=60, confirmed=15),
        champion(reviewed=200, confirmed=180),
        REFERENCE,
        now,
    )
    assert worse.action == "abort" and "alert_precision" in worse.reason
    alike = decide(
        rollout(),
        canary(reviewed=60, confirmed=50),
        champion(reviewed=200, confirmed=180),
        REFERENCE,
        now,
    )
    assert alike.action == "advance"


def test_steps_parse_as_percentages_and_end_at_100() -> None:
    assert parse_steps("5,25,50,100") == (0.05, 0.25, 0.5, 1.0)
    assert parse_steps("10,50") == (0.1, 0.5, 1.0)
    assert parse_steps("0.1,0.5") == (0.1, 0.5, 1.0)
    for bad in ("50,25", "0,50", "5,150", "x"):
        with pytest.raises(UsageError):
            parse_steps(bad)
    assert parse_duration("90s") == 90 and parse_duration("30m") == 1800
    assert parse_duration("1h") == 3600 and parse_duration("15") == 15
    with pytest.raises(UsageError):
        parse_duration("soon")


def test_a_rollout_of_the_champion_itself_is_refused() -> None:
    with pytest.raises(UsageError, match="champion already"):
        start("1", "1", T0, (0.05, 1.0), LIMITS)


def test_the_state_survives_its_json_form() -> None:
    now = T0 + timedelta(hours=1, seconds=1)
    state = rollout()
    after = advanced(state, decide(state, canary(), champion(), REFERENCE, now), now)
    assert Rollout.from_json(json.loads(json.dumps(after.to_json()))) == after
