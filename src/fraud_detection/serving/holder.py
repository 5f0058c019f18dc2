"""Holds the champion (and challenger, and a rollout's canary) a worker serves, and keeps them
current."""

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ..explain import Explainer
from ..registry import CANARY, CHALLENGER, CHAMPION, Registry
from . import metrics
from .model import LoadedModel, load_from_cache, load_from_store, save_to_cache

log = logging.getLogger(__name__)
MAX_BACKOFF = 30.0
KEPT_EXPLAINERS = 4
"""Versions whose explainers are kept after they stop being served: the log writer explains
rows a little after they were scored, perhaps by a model swapped out since."""


class Canary(NamedTuple):
    """A rollout's canary and the share of the champion's traffic it takes (its store alias
    carries both), held as one value so a request never pairs one with the other's share."""

    model: LoadedModel
    share: float


class ModelHolder:
    """The models one worker serves; a reload swaps a whole LoadedModel in one assignment."""

    def __init__(self, registry_factory: Callable[[], Registry], cache_dir: Path) -> None:
        self._registry_factory = registry_factory
        self._registry: Registry | None = None
        self._cache_dir = cache_dir
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.champion: LoadedModel | None = None
        self.challenger: LoadedModel | None = None
        self.canary: Canary | None = None
        self._explainers: dict[str, Explainer | None] = {}

    def explainer(self, version: str) -> Explainer | None:
        """The explainer of a version served now or lately (None: it cannot explain, or was
        served too long ago)."""
        return self._explainers.get(version)

    def _keep_explainers(self, *models: LoadedModel | None) -> None:
        for model in models:
            if model is not None:
                self._explainers.pop(model.version, None)
                self._explainers[model.version] = model.explainer  # the newest last
        while len(self._explainers) > KEPT_EXPLAINERS:
            del self._explainers[next(iter(self._explainers))]

    @property
    def ready(self) -> bool:
        """True once a champion is loaded (from the store or the local cache)."""
        return self.champion is not None

    def _store(self) -> Registry:
        if self._registry is None:
            self._registry = self._registry_factory()
        return self._registry

    def _refresh(
        self, alias: str, current: LoadedModel | None, target: str | None
    ) -> LoadedModel | None:
        """The model `target` (where `alias` points now): `current` if unchanged, None if the
        alias is unset."""
        registry = self._store()
        if target is None:
            return None
        if current is not None and current.version == target and current.source == "store":
            return current
        model, files = load_from_store(registry, target)
        if alias == CHAMPION:
            save_to_cache(self._cache_dir, files, model.manifest)
        log.info("loaded %s version %s", alias, model.version)
        return model

    def reload(self) -> bool:
        """Follow the aliases once; on any failure keep the models served now. True on success."""
        with self._lock:
            try:
                registry = self._store()
                pointers = {name: registry.alias(name) for name in (CHAMPION, CHALLENGER, CANARY)}
                champion = self._refresh(CHAMPION, self.champion, pointers[CHAMPION].version)
                challenger = self._refresh(
                    CHALLENGER, self.challenger, pointers[CHALLENGER].version
                )
                served = self.canary.model if self.canary else None
                canary = self._refresh(CANARY, served, pointers[CANARY].version)
            except Exception as exc:  # a reload must never take the worker down
                log.warning("model reload failed, keeping version %s: %s", self._version(), exc)
                metrics.MODEL_RELOADS.labels(result="failure").inc()
                return False
            changed = (
                champion is not self.champion
                or challenger is not self.challenger
                or canary is not served
            )
            if champion is not None:
                self.champion = champion
            self.challenger = challenger
            share = pointers[CANARY].share or 0.0
            self.canary = Canary(canary, share) if canary is not None else None
            self._keep_explainers(champion, challenger, canary)
            if changed:
                metrics.MODEL_RELOADS.labels(result="success").inc()
                metrics.set_model_info(self.champion, self.challenger, canary)
            return True

    def _version(self) -> str:
        return self.champion.version if self.champion else "none"

    def start(self, interval: float) -> None:
        """Load now (the cache first if the store is down), then poll in a daemon thread."""
        healthy = self.reload() and self.champion is not None
        if not healthy:
            self._load_cache()
        first_wait = interval if healthy else 1.0
        threading.Thread(
            target=self._poll, args=(interval, first_wait), daemon=True, name="reloader"
        ).start()

    def _load_cache(self) -> None:
        try:
            self.champion = load_from_cache(self._cache_dir)
        except Exception as exc:  # no cache yet is normal on a first start
            log.warning("no champion from the store or the local cache yet: %s", exc)
            return
        self._keep_explainers(self.champion)
        metrics.set_model_info(self.champion, self.challenger, None)
        log.warning("serving cached version %s until the store answers", self.champion.version)

    def _poll(self, interval: float, delay: float) -> None:
        """Follow the alias every interval; while the store fails, retry with backoff."""
        while not self._stop.wait(delay):
            healthy = self.reload() and self.champion is not None
            healthy = healthy and self.champion is not None and self.champion.source == "store"
            delay = interval if healthy else min(delay * 2, MAX_BACKOFF)

    def stop(self) -> None:
        """Stop the polling thread (tests and graceful shutdown)."""
        self._stop.set()
