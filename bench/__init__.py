"""The benchmark suite of issue 6: pingpong against its peers. Run ``python -m bench``."""
