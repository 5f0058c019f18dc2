"""Live quality of the served models on logged predictions joined with analysts' labels."""

from typing import Any

import numpy as np
import pandas as pd

from ..evaluation import confusion, confusion_rates


def live_metrics(window: pd.DataFrame) -> dict[str, Any]:
    """Precision, recall, F1, FPR, FNR and confusion on labelled rows; fraud rate on all rows.

    A ratio whose denominator is zero (no labels, no labelled frauds, nothing flagged) is None.
    """
    flagged_all = window["is_fraud"].to_numpy(dtype=bool)
    labelled = window["label"].notna().to_numpy()
    y = window["label"].to_numpy(dtype=np.float64)[labelled] == 1.0
    flagged = flagged_all[labelled]
    cm = confusion(y, flagged)
    return {
        "rows": len(window),
        "labelled": int(labelled.sum()),
        "labelled_frauds": cm["tp"] + cm["fn"],
        "flagged": int(flagged_all.sum()),
        "predicted_fraud_rate": float(flagged_all.mean()) if len(window) else None,
        # None rather than 0.0: "no labelled frauds" must not read as "recall 0".
        **confusion_rates(cm, undefined=None),
        "confusion_matrix": cm,
    }


def variant_metrics(window: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Live metrics per (variant, model version): champion against an A/B or shadow challenger
    on the transactions each scored."""
    return {
        f"{variant} v{version}": live_metrics(group)
        for (variant, version), group in window.groupby(["variant", "model_version"], sort=True)
    }
