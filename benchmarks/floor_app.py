"""Benchmark floor: a Flask endpoint that only parses the JSON body and returns a constant."""

from typing import Any

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/predict")
def predict() -> Any:
    request.get_json()
    return jsonify({"fraud_probability": 0.0, "is_fraud": False})
