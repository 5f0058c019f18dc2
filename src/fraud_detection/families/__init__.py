"""Model families, one module each (its defaults, fit and ONNX converter), and the registry
of them. Adding a family is one new module here and one line in FAMILIES."""

from typing import Any

from . import lightgbm, rf, xgboost
from .family import Family, TreeCallback

FAMILIES: dict[str, Family] = {
    rf.FAMILY.name: rf.FAMILY,
    xgboost.FAMILY.name: xgboost.FAMILY,
    lightgbm.FAMILY.name: lightgbm.FAMILY,
}

Algorithm = str
"""A family's name: a key of FAMILIES."""
ALGORITHMS: tuple[Algorithm, ...] = tuple(FAMILIES)
"""The families `--algorithm` offers and `--algorithm auto` compares."""

__all__ = ["ALGORITHMS", "FAMILIES", "Algorithm", "Family", "TreeCallback", "family_params"]


def family_params(algorithm: Algorithm, trees: int | None = None) -> dict[str, Any]:
    """The family's defaults, with the number of trees (boosting rounds) replaced if given."""
    return FAMILIES[algorithm].params(trees)
