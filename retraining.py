"""Retrain a challenger and promote it only if it is better; the same as `fraud retrain`."""

from fraud_detection.cli import run_alone

if __name__ == "__main__":
    run_alone("retrain")
