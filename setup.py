"""The build: pyproject.toml says everything but this, the hot path compiled by
mypyc (docs/performance.md). The modules in mypyc-modules.txt become C extensions
next to their sources (in place for an editable install); mypyc.ini holds mypy's
settings for the compile, which runs in pip's isolated build environment."""

from pathlib import Path

from mypyc.build import mypycify
from setuptools import setup

LISTED = Path(__file__).with_name("mypyc-modules.txt").read_text().splitlines()
MODULES = [line for line in LISTED if line and not line.startswith("#")]

setup(
    ext_modules=mypycify(
        ["--config-file", "mypyc.ini", *MODULES], group_name="pingpong._compiled", opt_level="3"
    )
)
