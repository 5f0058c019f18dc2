"""The log writer's explanations of flagged rows: only answered, flagged rows without one, and
within a share of a core, so a burst of alerts never slows the worker down."""

import time
from typing import Any

import numpy as np

from fraud_detection.log_record import LoggedBatch, Row, utc_now
from fraud_detection.serving.log_explain import EXPLANATION, RowExplainer
from serving_helpers import sample


class Burner:
    """An explainer that spends `seconds` of CPU per call and names the rows' first value."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def explain(self, x: Any, top: int) -> list[dict[str, Any]]:
        self.calls += 1
        started = time.thread_time()
        while time.thread_time() - started < self.seconds:
            pass
        return [{"first": float(row[0]), "top": top} for row in x]


def rows(ids: list[str], flags: list[bool], variant: str = "champion") -> list[Row | None]:
    x = np.arange(len(ids) * 30, dtype=np.float32).reshape(len(ids), 30)
    p = np.array([0.9 if f else 0.1 for f in flags], dtype=np.float32)
    batch = LoggedBatch(ids, x, p, np.array(flags), 0.5, "7", variant, "predict", utc_now(), 1.0)
    return list(batch.rows())


def unexplained(reason: str) -> float:
    return sample("fraud_prediction_log_unexplained_total", reason=reason)


def test_only_flagged_answered_rows_without_an_explanation_are_explained() -> None:
    burner = Burner(0.0)
    explain = RowExplainer(lambda version: burner if version == "7" else None, top=3)
    logged = rows(["a", "b", "c"], [True, False, True])
    shadow = rows(["s"], [True], variant="shadow")
    done = explain([*logged, *shadow, None])
    assert [row[EXPLANATION] if row else None for row in done] == [
        '{"first":0.0,"top":3}',
        None,
        '{"first":60.0,"top":3}',
        None,
        None,
    ]
    assert burner.calls == 1  # one call per version and group
    assert explain(done) == done  # explained rows are left as they are
    assert burner.calls == 1


def test_a_model_that_cannot_explain_is_counted() -> None:
    before = unexplained("unexplainable")
    RowExplainer(lambda version: None, top=5)(rows(["a", "b"], [True, True]))
    assert unexplained("unexplainable") - before == 2


def test_a_burst_past_the_budget_is_logged_without_explanations_and_counted() -> None:
    # 0.02 of a core saves up 0.1 s of CPU: two calls of 0.06 s, then the budget is spent.
    burner = Burner(0.06)
    explain = RowExplainer(lambda version: burner, top=5, share=0.02)
    before = unexplained("budget")
    done = [explain(rows([f"r{i}"], [True]))[0] for i in range(5)]
    assert [row is not None and row[EXPLANATION] is not None for row in done] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert unexplained("budget") - before == 3
