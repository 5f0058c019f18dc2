"""The noise-aware gate: a paired bootstrap gain must clear zero; seeds alone never promote,
a truly better challenger does. The last two run on the real data."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraud_detection.data import load_dataset
from fraud_detection.gate import paired_gain
from fraud_detection.registry import Registry
from fraud_detection.retraining import (
    HOLDOUT_FRAUDS,
    PromotionRule,
    decide,
    retrain,
    size_holdout,
)
from fraud_detection.store import open_store
from fraud_detection.training import DEFAULT_PARAMS, TrainingOptions, train

HOLDOUT = 0.1
FEW_TREES = {**DEFAULT_PARAMS, "n_estimators": 30}


def test_the_same_scores_never_gain() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(5000) < 0.01).astype(int)
    s = rng.random(5000)
    gain = paired_gain(y, (s, 0.5), (s, 0.5), resamples=200)
    assert gain.gain == 0 and gain.lower_bound == 0 and not gain.believed


def test_one_more_caught_fraud_is_not_believed_but_many_are() -> None:
    y = np.zeros(20_000, dtype=int)
    y[:22] = 1  # as many frauds as the retraining holdout holds
    champion = np.where(y == 1, 0.9, 0.1)
    champion[:8] = 0.1  # the champion misses 8 frauds
    one_more = champion.copy()
    one_more[0] = 0.9
    all_caught = np.where(y == 1, 0.9, 0.1)
    assert not paired_gain(y, (champion, 0.5), (one_more, 0.5), metric="f1").believed
    assert paired_gain(y, (champion, 0.5), (all_caught, 0.5), metric="f1").believed


def test_a_gain_the_rule_accepts_but_the_bootstrap_doubts_is_staged() -> None:
    y = np.zeros(20_000, dtype=int)
    y[:22] = 1
    champion = np.where(y == 1, 0.9, 0.1)
    champion[:8] = 0.1
    challenger = champion.copy()
    challenger[0] = 0.9  # one more fraud caught: +0.04 F1, above the rule's 0.02
    gain = paired_gain(y, (champion, 0.5), (challenger, 0.5), metric="f1")
    metrics = [{"f1": f1, "precision": 1.0} for f1 in (28 / 36, 30 / 36)]
    assert decide(*metrics, PromotionRule(paired_bootstrap=False)).action == "promote"
    decision = decide(*metrics, PromotionRule(), gain)
    assert decision.action == "stage"
    assert "22 holdout frauds" in decision.reason and "could be luck" in decision.reason


@pytest.fixture(scope="module")
def real(real_data: Path) -> pd.DataFrame:
    return load_dataset(str(real_data))


def _register_champion(df: pd.DataFrame, store: Path, options: TrainingOptions) -> Registry:
    registry = Registry(open_store(str(store)), "fraud-detector")
    trained = train(df, options, source="real", model_name=registry.name)
    manifest = registry.register(trained.files, trained.manifest, reason="champion")
    registry.promote(str(manifest["version"]), reason="champion")
    return registry


def test_a_challenger_differing_only_in_its_seed_is_not_promoted(
    real: pd.DataFrame, tmp_path: Path
) -> None:
    # The default holdout, grown from the last 10% to hold 50 frauds.
    holdout = size_holdout(real, HOLDOUT, HOLDOUT_FRAUDS)
    same_split = TrainingOptions(params=FEW_TREES, history_fraction=1 - holdout.share)
    registry = _register_champion(real, tmp_path, same_split)
    reseeded = TrainingOptions(params={**FEW_TREES, "random_state": 7})
    result = retrain(
        real, registry, PromotionRule(), source="real", holdout=holdout, options=reseeded
    )
    assert result.decision.action == "stage", result.report
    assert result.gain is not None and not result.gain.believed
    assert result.gain.frauds == HOLDOUT_FRAUDS
    assert f"rests on **{HOLDOUT_FRAUDS} frauds**" in result.report
    assert registry.aliases()["champion"] == "1"


def test_a_truly_better_challenger_is_promoted(real: pd.DataFrame, tmp_path: Path) -> None:
    # The champion sees only four weak features; the challenger is the production forest.
    weak = TrainingOptions(
        params=FEW_TREES, model_features=("V1", "V2", "V5", "Amount"), history_fraction=0.9
    )
    registry = _register_champion(real, tmp_path, weak)
    result = retrain(
        real,
        registry,
        PromotionRule(),
        source="real",
        holdout=size_holdout(real, HOLDOUT),
        options=TrainingOptions(params=FEW_TREES),
    )
    assert result.decision.action == "promote", result.report
    assert result.gain is not None and result.gain.lower_bound > 0
    assert registry.aliases()["champion"] == "2"
