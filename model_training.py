"""Train a fraud model and register it in the model store; the same as `fraud train`."""

import sys

from fraud_detection.cli import cli

if __name__ == "__main__":
    cli(["train", *sys.argv[1:]])
