"""Record/replay of model calls: record once against a live model, replay anywhere offline.

Plain Python (no IPython): usable from notebooks, scripts and batch code. ``chat_request_key``
names a call, ``ReplayStore`` keeps each reply as a JSON file in a folder (reviewable in git),
``Replayer`` applies a mode (off, record, replay, auto) chosen by ``resolve`` — where
``GLEITZEIT_REPLAY`` / ``GLEITZEIT_STORE`` win. ``python -m gleitzeit_nb.replay migrate FILE``
converts an SQLite store of an older version.
"""

from .active import configure, current
from .errors import ReplayMissError, ReplayStoreError
from .keys import chat_request_key, embed_request_key, image_sha256, key_of
from .mode import MODES, STORE_NAME, Replayer, default_store_dir, resolve
from .store import Recording, ReplayStore

__all__ = ["chat_request_key", "embed_request_key", "key_of", "image_sha256",
           "ReplayStore", "Recording", "Replayer", "resolve", "default_store_dir", "MODES",
           "STORE_NAME", "ReplayMissError", "ReplayStoreError", "configure", "current"]
