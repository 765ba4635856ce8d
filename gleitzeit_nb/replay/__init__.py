"""Record/replay of model calls: record once against a live model, replay anywhere offline.

Plain Python (no IPython): usable from notebooks, scripts and batch code. ``call_key`` names a
call, ``ReplayStore`` keeps replies in SQLite, ``Replayer`` applies a mode (off, record, replay,
auto) chosen by ``resolve`` — where ``GLEITZEIT_REPLAY`` / ``GLEITZEIT_STORE`` win.
"""

from .active import configure, current
from .errors import ReplayMissError, ReplayStoreError
from .keys import call_key, canonical_request, image_sha256, key_of, normalise_model
from .mode import MODES, STORE_NAME, Replayer, default_store_dir, resolve
from .store import Recording, ReplayStore

__all__ = ["call_key", "canonical_request", "key_of", "image_sha256", "normalise_model",
           "ReplayStore", "Recording", "Replayer", "resolve", "default_store_dir", "MODES",
           "STORE_NAME", "ReplayMissError", "ReplayStoreError", "configure", "current"]
