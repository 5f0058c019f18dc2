"""Train a fraud model and register it in the model store; the same as `fraud train`."""

from fraud_detection.cli import run_alone

if __name__ == "__main__":
    run_alone("train")
