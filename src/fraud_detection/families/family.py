"""What a model family is: its name, the estimator it fits, its defaults, how it is fitted
(with progress) and how skl2onnx converts it."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import ClassifierMixin

TreeCallback = Callable[[int, int], None]
"""Progress: (trees grown, trees in all)."""
Fit = Callable[
    [
        NDArray[Any],
        NDArray[Any],
        dict[str, Any],
        int,
        TreeCallback | None,
        NDArray[np.float64] | None,
    ],
    ClassifierMixin,
]
"""fit(x, y, params, n_jobs, on_trees, sample_weight): the fitted classifier."""


@dataclass(frozen=True)
class Family:
    """One model family. `register_converter` teaches skl2onnx to convert its estimator
    inside a pipeline (a no-op for scikit-learn's own, which skl2onnx knows)."""

    name: str
    estimator: str
    """The fitted classifier's class name, as the manifest's `algorithm` records it."""
    defaults: Mapping[str, Any]
    fit: Fit
    register_converter: Callable[[], None] = lambda: None
    libraries: Mapping[str, str] = field(default_factory=dict)
    """Library -> the distribution whose version the manifest records for it."""

    def params(self, trees: int | None = None) -> dict[str, Any]:
        """The defaults, with the number of trees (boosting rounds) replaced if given."""
        params = dict(self.defaults)
        if trees is not None:
            params["n_estimators"] = trees
        return params


def register_classifier_converter(estimator: type, alias: str, converter: Any) -> None:
    """Register a converter (onnxmltools', say) for a classifier skl2onnx does not know, with
    the options a pipeline export passes it."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    update_registered_converter(
        estimator,
        alias,
        calculate_linear_classifier_output_shapes,
        converter,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )


def every_tenth(total: int, on_trees: TreeCallback | None) -> Callable[[int], None]:
    """A per-round hook that reports progress about ten times over `total` rounds."""
    step = max(total // 10, 1)

    def report(done: int) -> None:
        if on_trees and (done % step == 0 or done == total):
            on_trees(done, total)

    return report
