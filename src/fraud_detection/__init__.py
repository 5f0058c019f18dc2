"""Credit-card fraud detection: training, model registry, serving and monitoring."""

__version__ = "0.1.0"
