"""The registry: one model per asset, created on first sight, bounded in memory, persisted.

The river ``Grouper`` pattern (a model cloned per key) with what a long-running fleet needs:
a least-recently-used bound (beyond ``max_models`` the coldest models are checkpointed and
dropped, then reloaded when their asset reports again), and checkpoints of the models that
learned, on an interval and at shutdown, so a restart does not send the fleet back into
warm-up. `ModelRegistry.apply` carries out what maintenance staff asked (`models.feedback`):
an episode taught as normal, a model reset.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from itertools import islice

from models.asset import AssetModel
from models.checkpoints import Checkpoints, Key
from models.detectors import prepare
from models.feedback import ModelChange
from models.profiles import ProfileSelector, fingerprint

log = logging.getLogger(__name__)

# Models saved per batch at most: 20,000 default models took 0.76 s to save here, time the
# subscriber thread would hold a batch's acks.
_SAVE_SLICE = 2_000
# What a change that failed records as readings taught, in the feedback log.
_FAILED = -1


class ModelRegistry:
    """Asset models by (site, asset).

    Parameters
    ----------
    selector
        Chooses each new asset's profile.
    checkpoints
        Where models are saved and restored (None: memory only, as in evaluation).
    max_models
        Models held in memory at most.
    checkpoint_interval
        Seconds between saves of the models that learned since the last save.
    clock
        Monotonic time in seconds (tests pass their own).
    """

    def __init__(
        self,
        selector: ProfileSelector,
        checkpoints: Checkpoints | None,
        *,
        max_models: int = 10_000,
        checkpoint_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.selector = selector
        self.checkpoints = checkpoints
        self.max_models = max_models
        self.checkpoint_interval = checkpoint_interval
        self._clock = clock
        self._models: OrderedDict[Key, AssetModel] = OrderedDict()
        self._dirty: set[Key] = set()
        self._due: list[Key] = []  # a checkpoint being saved slice by slice
        self._fingerprints = {name: fingerprint(p) for name, p in selector.by_name.items()}
        self._last_save = clock()
        prepare(d.type for p in selector.by_name.values() for d in p.detectors)

    def __len__(self) -> int:
        return len(self._models)

    def get(self, site: str, asset: str, kind: str | None) -> AssetModel:
        """The asset's model: in memory, else restored from its checkpoint, else new."""
        key = (site, asset)
        model = self._models.get(key)
        if model is not None:
            self._models.move_to_end(key)
            return model
        profile = self.selector.select(site, asset, kind)
        if kind is None and self.checkpoints is not None:
            # A reading without kind keeps the profile its asset's model was built with.
            saved = self.checkpoints.profile_of(key)
            if saved in self.selector.by_name:
                profile = self.selector.by_name[saved]
        fp = self._fingerprints[profile.name]
        model = self.checkpoints.load(key, fp) if self.checkpoints is not None else None
        if model is None:
            model = AssetModel(profile)
        else:
            model.profile = profile  # verdict rules may have changed since it was saved
        self._models[key] = model
        if len(self._models) > self.max_models:
            self._evict()
        return model

    def apply(self, changes: Sequence[ModelChange]) -> list[tuple[int, int]]:
        """Apply teachings and resets in order; return (change id, readings taught) pairs.

        An ``accept`` teaches the asset's model the readings it flagged in the episode
        (`AssetModel.accept`); a ``reset`` replaces the model with a new one of the same
        profile, which warms up again. An asset with no model in memory nor on disk has
        nothing to teach or forget (its next reading starts a new model). The changed models
        are saved and the changes marked applied in one transaction (raises `StoreError`,
        retryable, having marked nothing). Run on the scoring thread only, like everything
        that touches a model.
        """
        done: list[tuple[int, int]] = []
        changed: dict[Key, AssetModel] = {}
        for change in changes:
            key = (change.site, change.asset)
            taught = 0
            try:
                model = self._existing(key)
                if model is not None and change.action == "reset":
                    model = AssetModel(model.profile)
                    self._models[key] = model
                elif model is not None:
                    assert change.start_ns is not None and change.end_ns is not None
                    taught = model.accept(change.start_ns, change.end_ns)
            except Exception:  # a model that cannot take it must not block the others forever
                log.exception("%s of the model of %s/%s failed; dropped", change.action, *key)
                done.append((change.id, _FAILED))
                continue
            done.append((change.id, taught))
            if model is not None:
                changed[key] = model
            log.info(
                "model of %s/%s %s for %s%s",
                *key,
                "reset" if change.action == "reset" else f"taught {taught} readings as normal",
                change.by,
                f": {change.comment}" if change.comment else "",
            )
        if self.checkpoints is not None:
            self.checkpoints.save(
                ((key, m, self._fingerprints[m.profile.name]) for key, m in changed.items()),
                applied=done,
            )
            self._dirty.difference_update(changed)
        else:
            self._dirty.update(changed)
        if len(self._models) > self.max_models:
            self._evict()
        return done

    def _existing(self, key: Key) -> AssetModel | None:
        """The asset's model, in memory or restored from its checkpoint; None if it has none.

        Never a new one: without its reading's kind, a new model could get the wrong profile.
        """
        if key in self._models or (
            self.checkpoints is not None and self.checkpoints.profile_of(key) is not None
        ):
            return self.get(*key, None)
        return None

    def touched(self, site: str, asset: str) -> None:
        """Note that an asset's model learned, so the next checkpoint saves it."""
        self._dirty.add((site, asset))

    def _evict(self) -> None:
        """Checkpoint and drop the least recently used models beyond the bound.

        With checkpoints, a tenth of the bound goes at once so that saving is batched; the
        model just added (the most recent) always stays.
        """
        excess = len(self._models) - self.max_models
        batch = max(excess, self.max_models // 10) if self.checkpoints is not None else excess
        victims = list(islice(self._models, min(batch, len(self._models) - 1)))
        self._save([key for key in victims if key in self._dirty])
        for key in victims:
            del self._models[key]

    def maybe_checkpoint(self) -> None:
        """Save the models that moved, once the interval has passed, a slice per call.

        Called once per batch: a large fleet's checkpoint is spread over several batches
        instead of holding one batch's acks for seconds.
        """
        if not self._due and self._clock() - self._last_save >= self.checkpoint_interval:
            self._last_save = self._clock()
            self._due = list(self._dirty)
        if self._due:
            keys, self._due = self._due[:_SAVE_SLICE], self._due[_SAVE_SLICE:]
            self._save([key for key in keys if key in self._dirty])

    def checkpoint(self) -> int:
        """Save every model that moved since it was last saved; return how many."""
        self._last_save = self._clock()
        self._due = []
        return self._save(list(self._dirty))

    def _save(self, keys: list[Key]) -> int:
        if self.checkpoints is None or not keys:
            return 0
        keys = [key for key in keys if key in self._models]
        saved = self.checkpoints.save(
            (key, self._models[key], self._fingerprints[self._models[key].profile.name])
            for key in keys
        )
        self._dirty.difference_update(keys)
        return saved

    def release(self, keys: Collection[Key] | None = None) -> int:
        """Save every model that moved, forget those of `keys` (None: all); return how many saved.

        For a clustered source giving up partitions (docs/design.md §10): their assets may be
        scored by another instance from now on, which starts from these checkpoints, and a
        model kept here would be stale should the asset come back.
        """
        saved = self.checkpoint()
        if keys is None:
            self._models.clear()
        else:
            for key in keys:
                self._models.pop(key, None)
        return saved

    def close(self) -> None:
        """Save what learned since the last checkpoint and close the checkpoint file."""
        self.checkpoint()
        if self.checkpoints is not None:
            self.checkpoints.close()
