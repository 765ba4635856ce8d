"""nbval runs these notebooks from their recordings only: a missing recording is an error that
says how to record it, never a live call (nor a write into the committed store)."""

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    # nbval starts a notebook's kernel while its first cell is set up; the kernel copies this.
    saved = os.environ.get("GLEITZEIT_REPLAY")
    os.environ["GLEITZEIT_REPLAY"] = "replay"
    try:
        yield
    finally:
        if saved is None:
            del os.environ["GLEITZEIT_REPLAY"]
        else:
            os.environ["GLEITZEIT_REPLAY"] = saved
