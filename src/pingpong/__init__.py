"""pingpong: a throttled ping/pong HTTP service."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``__version__``, looked up when first asked for: importlib.metadata is
    slow to import, and the ``pingpong`` command holds its signals only once
    this package is imported (pingpong.__main__)."""
    if name != "__version__":
        raise AttributeError(f"module 'pingpong' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pingpong")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.0.0+unknown"
