"""The benchmark suite: pingpong against its peers and a bare server, throughput,
latency, Redis cost and memory, scored against the performance targets
(docs/performance.md). Run ``python -m bench``."""
