"""Retrain a challenger and promote it only if it is better; the same as `fraud retrain`."""

import sys

from fraud_detection.cli import cli

if __name__ == "__main__":
    cli(["retrain", *sys.argv[1:]])
