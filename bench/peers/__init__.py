"""The peer servers pingpong is measured against; each reads BENCH_LIMIT and
BENCH_STORAGE (a `limits` storage URI) from the environment."""
