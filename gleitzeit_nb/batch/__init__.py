"""Batch work at the server's capacity: ``gleitzeit_nb.batch(items, prompt, …)``.

This module is itself callable: ``gleitzeit_nb.batch(...)`` is ``run_batch(...)``, and
``gleitzeit_nb.batch.last_result`` holds the result of the latest batch (or embedding), also when
it was interrupted: the rows that finished are there.

    import gleitzeit_nb
    answers = gleitzeit_nb.batch(["Capital of France?", "Capital of Peru?"])
    df_out = gleitzeit_nb.batch(df, "Classify this ticket as bug/feature/question: {text}")
    captions = gleitzeit_nb.batch("photos/*.jpg", "What is in this photo?", images=True)
    vectors = gleitzeit_nb.embed(df["text"])

See ``run_batch`` for the arguments, ``BatchResult`` for list results, and
``gleitzeit_nb.batch.limiter`` for how the number of requests in flight is chosen.
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any

from .embed import embed_texts, embed_texts_async
from .results import BatchResult
from .runner import run_batch, run_batch_async

__all__ = ["run_batch", "run_batch_async", "embed_texts", "embed_texts_async", "BatchResult",
           "batch", "embed", "last_result"]

#: The result of the latest batch or embedding (partial if it was interrupted or failed).
last_result: Any = None

#: ``gleitzeit_nb.embed``.
embed = embed_texts


class _CallableModule(types.ModuleType):
    """Lets ``gleitzeit_nb.batch`` be both this package and the function it is named after."""

    # The function itself (not a wrapper), so `gleitzeit_nb.batch?` shows its real signature.
    __call__ = staticmethod(run_batch)

sys.modules[__name__].__class__ = _CallableModule
#: What ``inspect.signature`` (and so ``gleitzeit_nb.batch?``) shows for this callable module.
__signature__ = inspect.signature(run_batch)

#: This module (callable), so a lazy ``from gleitzeit_nb.batch import batch`` gets the same object.
batch = sys.modules[__name__]
