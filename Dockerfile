# syntax=docker/dockerfile:1
# Build stage: a virtualenv with the pinned dependencies and the package, nothing else.
FROM python:3.11.7-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements.txt ./
RUN /opt/venv/bin/pip install -r requirements.txt
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install --no-deps .

# Runtime stage: the virtualenv, the two entry files and a non-root user. It may write only
# under /tmp: the default prediction log lives there (set DATABASE_URL for PostgreSQL), and
# matplotlib's cache (the user has no home; `fraud train` and `fraud models` import it).
FROM python:3.11.7-slim-bookworm
# LightGBM and XGBoost load the OpenMP runtime when `fraud retrain --algorithm` fits them.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1=12.2.0-14+deb12u1 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 fraud && useradd --uid 10001 --gid fraud --no-create-home fraud
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY app.py gunicorn.conf.py ./
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FRAUD_HOST=0.0.0.0 \
    FRAUD_PORT=5000 \
    FRAUD_MODEL_STORE=/data/store \
    FRAUD_SERVING_CACHE=/tmp/fraud-cache \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    MPLCONFIGDIR=/tmp/matplotlib \
    DATABASE_URL=sqlite:////tmp/fraud/predictions.db \
    FRAUD_LOG_SPOOL_DIR=/tmp/fraud/log-spool
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/v2/health/ready', timeout=2)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "app:app"]
