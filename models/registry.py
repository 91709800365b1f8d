"""The registry: one model per asset, created on first sight, bounded in memory, persisted.

The river ``Grouper`` pattern (a model cloned per key) with what a long-running fleet needs:
a least-recently-used bound (beyond ``max_models`` the coldest models are checkpointed and
dropped, then reloaded when their asset reports again), and checkpoints of the models that
learned, on an interval and at shutdown, so a restart does not send the fleet back into
warm-up.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from itertools import islice

from models.asset import AssetModel
from models.checkpoints import CheckpointStore, Key
from models.profiles import ProfileSelector, fingerprint

log = logging.getLogger(__name__)

# Models saved per batch at most: 20,000 default models took 0.76 s to save here, time the
# subscriber thread would hold a batch's acks.
_SAVE_SLICE = 2_000


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
        checkpoints: CheckpointStore | None,
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

    def close(self) -> None:
        """Save what learned since the last checkpoint and close the checkpoint file."""
        self.checkpoint()
        if self.checkpoints is not None:
            self.checkpoints.close()
