"""A loaded, verified ONNX model and the one scoring function both APIs call."""

import json
import logging
import os
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from ..errors import IntegrityError, NotFoundError
from ..explain import Explainer, build_explainer
from ..inference import onnx_fraud_probability, onnx_session
from ..registry import Registry, check_integrity
from ..schema import N_FEATURES
from ..tree_arrays import UnsupportedModel

log = logging.getLogger(__name__)
SERVED_FILES = ("model.onnx", "reference.json")


@dataclass(frozen=True)
class LoadedModel:
    """One model version ready to score: swapped in and out whole, never mutated."""

    version: str
    threshold: float
    manifest: dict[str, Any]
    session: ort.InferenceSession = field(repr=False)
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    source: str = "store"
    explainer: Explainer | None = field(default=None, repr=False)

    def score(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Fraud probability per row of an [N, 30] float32 array."""
        return onnx_fraud_probability(self.session, x)


def _probe_rows(reference: dict[str, Any], features: list[str]) -> NDArray[np.float32]:
    """A few plausible rows built from the reference quantile edges, for a smoke test."""
    columns = []
    for name in features:
        edges = reference["features"][name]["edges"] or [0.0]
        columns.append([edges[0], edges[len(edges) // 2], edges[-1]])
    return np.asarray(columns, dtype=np.float32).T


def build_model(files: dict[str, bytes], manifest: dict[str, Any], source: str) -> LoadedModel:
    """Verify every served file against the manifest, open ONNX and smoke-test it."""
    for name in SERVED_FILES:
        check_integrity(name, files[name], manifest["files"][name])
    if len(manifest["features"]) != N_FEATURES:
        raise IntegrityError(
            f"model {manifest['version']} expects {len(manifest['features'])} features"
        )
    session = onnx_session(files["model.onnx"])
    model = LoadedModel(
        version=str(manifest["version"]),
        threshold=float(manifest["threshold"]),
        manifest=manifest,
        session=session,
        source=source,
    )
    rows = _probe_rows(json.loads(files["reference.json"]), manifest["features"])
    probe = model.score(rows)
    if not (np.isfinite(probe).all() and ((probe >= 0) & (probe <= 1)).all()):
        raise IntegrityError(f"model {model.version} scores its probe rows outside [0, 1]")
    try:
        explainer = build_explainer(files["model.onnx"], manifest["features"], rows, probe)
    except UnsupportedModel as exc:
        log.info("model %s: no explanations (%s)", model.version, exc)
        return model
    except Exception:  # explanations are optional: a model that scores is served without them
        log.exception("model %s: explanations could not be built", model.version)
        return model
    return replace(model, explainer=explainer)


def load_from_store(registry: Registry, ref: str) -> tuple[LoadedModel, dict[str, bytes]]:
    """The version `ref` points to, verified, and its files (for the local cache)."""
    manifest = registry.manifest(ref)
    version = str(manifest["version"])
    files = {name: registry.read_file(version, name) for name in SERVED_FILES}
    return build_model(files, manifest, source="store"), files


def save_to_cache(cache_dir: Path, files: dict[str, bytes], manifest: dict[str, Any]) -> None:
    """Keep the last good model on local disk, so a restart survives a store outage."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, data in {**files, "manifest.json": json.dumps(manifest).encode()}.items():
        tmp = cache_dir / f".{name}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, cache_dir / name)


def load_from_cache(cache_dir: Path) -> LoadedModel:
    """The cached last good model, verified against its cached manifest."""
    try:
        manifest = json.loads((cache_dir / "manifest.json").read_bytes())
        files = {name: (cache_dir / name).read_bytes() for name in SERVED_FILES}
    except (OSError, ValueError) as exc:
        raise NotFoundError(f"no usable cached model in {cache_dir}: {exc}") from exc
    return build_model(files, manifest, source="local cache")
