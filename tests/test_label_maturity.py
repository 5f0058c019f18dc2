"""Label maturity and figure statuses as pure functions: a row's class is known once labelled
or once past the horizon; a figure is measured, estimated or unknown, and says why."""

from datetime import date, datetime, timedelta

import pytest

from fraud_detection.monitoring.live import Tally
from fraud_detection.monitoring.maturity import (
    Cohort,
    Horizon,
    Reviews,
    completeness,
    review_figures,
    settled_figures,
    wilson,
)
from fraud_detection.monitoring.status import Estimate, Status, measured, unknown, with_estimates

AS_OF = datetime(2026, 6, 1)
HORIZON = Horizon(AS_OF, timedelta(days=60))


def test_an_unlabelled_row_is_legitimate_only_past_the_horizon() -> None:
    old, young = AS_OF - timedelta(days=61), AS_OF - timedelta(days=59)
    assert HORIZON.outcome(None, None, old) == 0
    assert HORIZON.outcome(None, None, young) is None, "unknown, never legitimate"
    assert HORIZON.is_mature(HORIZON.cut) and not HORIZON.is_mature(HORIZON.cut + timedelta(1))


def test_a_label_counts_once_observed_by_the_judging_moment() -> None:
    young = AS_OF - timedelta(days=3)
    assert HORIZON.outcome(1, AS_OF - timedelta(days=1), young) == 1
    assert HORIZON.outcome(1, AS_OF + timedelta(days=1), young) is None, "not yet arrived"
    old = AS_OF - timedelta(days=90)
    assert HORIZON.outcome(1, AS_OF + timedelta(days=1), old) == 0, "as known then: presumed"


def test_the_mature_window_ends_at_the_horizon() -> None:
    assert HORIZON.mature_window(AS_OF - timedelta(days=7)) == (
        AS_OF - timedelta(days=67),
        AS_OF - timedelta(days=60),
    )


def test_wilson_interval_matches_the_textbook_values() -> None:
    # 0 of 10: [0, 0.2775]; 10 of 10: [0.7225, 1]; 5 of 10: 0.5 -/+ 0.2634.
    assert wilson(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert wilson(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-5)
    assert wilson(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)


def test_day_one_reviews_measure_alert_precision_and_coverage_only() -> None:
    # The day 1: 64 alerts, every one reviewed, 60 of them fraud; no row is mature.
    reviews = review_figures(Reviews(alerts=64, reviewed=64, confirmed=60))
    assert reviews["alert_precision"].status is Status.MEASURED
    assert reviews["alert_precision"].value == pytest.approx(60 / 64)
    low, high = reviews["alert_precision"].interval or (0, 0)
    assert low < 60 / 64 < high
    assert reviews["review_coverage"].value == 1.0
    assert reviews["alert_precision"].basis == "64 reviewed alerts"
    settled = settled_figures(Tally(), "no mature rows")
    assert {f.status for f in settled.values()} == {Status.UNKNOWN}
    assert settled["recall"].value is None and settled["recall"].reason == "no mature rows"


def test_without_reviews_the_review_figures_are_unknown_and_say_why() -> None:
    figures = review_figures(Reviews(alerts=5))
    assert figures["alert_precision"].status is Status.UNKNOWN
    assert figures["alert_precision"].reason == "no reviewed alerts in the window"
    assert figures["review_coverage"].measured == 0.0
    assert review_figures(Reviews())["review_coverage"].reason == "no alerts in the window"


def test_settled_rows_measure_every_rate_with_an_interval() -> None:
    figures = settled_figures(Tally(rows=1000, flagged=40, tn=955, fp=5, fn=5, tp=35), "none")
    assert figures["recall"].measured == pytest.approx(35 / 40)
    assert figures["fpr"].measured == pytest.approx(5 / 960)
    assert figures["recall"].interval is not None and figures["fpr"].interval is None
    assert figures["recall"].basis == "1,000 settled rows (40 frauds)"
    no_frauds = settled_figures(Tally(rows=100, flagged=0, tn=100), "none")
    assert no_frauds["recall"].reason == "no frauds among the 100 settled rows"
    assert no_frauds["fpr"].measured == 0.0


def test_an_estimate_fills_an_unknown_figure_and_sits_beside_a_measured_one() -> None:
    estimate = Estimate(0.7, (0.6, 0.8), "expected counts of 900 calibrated scores")
    figures = with_estimates(
        {"recall": unknown("no mature rows"), "f1": measured(0.8, "5,000 settled rows")},
        {"recall": estimate, "f1": estimate},
    )
    assert figures["recall"].status is Status.ESTIMATED and figures["recall"].value == 0.7
    assert figures["recall"].reason == "no mature rows" and figures["recall"].measured is None
    assert figures["f1"].status is Status.MEASURED and figures["f1"].value == 0.8
    assert figures["f1"].to_json()["estimate"] == {
        "value": 0.7,
        "interval": [0.6, 0.8],
        "basis": "expected counts of 900 calibrated scores",
    }


def test_label_completeness_is_the_share_of_rows_whose_class_is_known() -> None:
    cohort = Cohort(date(2026, 3, 1), rows=200, alerts=4, reviewed=3, chargebacks=1, settled=4)
    assert cohort.completeness == pytest.approx(0.02)
    assert cohort.to_json()["label_completeness"] == pytest.approx(0.02)
    assert Cohort(date(2026, 3, 1)).completeness is None
    assert completeness(0, 0).status is Status.UNKNOWN
    assert completeness(10, 10).measured == 1.0
