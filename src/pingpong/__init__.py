"""pingpong: a throttled ping/pong HTTP service."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pingpong")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
