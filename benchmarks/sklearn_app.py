"""The common approach, for comparison: pandas.DataFrame + scikit-learn predict_proba in Flask.

Loads the same forest (model.joblib of the champion in BENCH_STORE) that the service serves
as ONNX. Benchmark only: the service itself never unpickles.
"""

import os
from typing import Any

import joblib
import pandas as pd
from flask import Flask, jsonify, request

from fraud_detection.registry import Registry
from fraud_detection.schema import FEATURES
from fraud_detection.store import open_store

registry = Registry(open_store(os.environ["BENCH_STORE"]), "fraud-detector")
model = joblib.load(registry.download("champion", os.environ["BENCH_CACHE"]) / "model.joblib")
# One thread per request, as in our service: joblib threads only slow a single-row predict.
model.set_params(forest__n_jobs=1)
threshold = float(registry.manifest("champion")["threshold"])
app = Flask(__name__)


@app.post("/predict")
def predict() -> Any:
    frame = pd.DataFrame([request.get_json()])[list(FEATURES)]
    probability = float(model.predict_proba(frame.to_numpy())[0, 1])
    return jsonify({"fraud_probability": probability, "is_fraud": probability >= threshold})
