"""Process helpers for pingpong's tests, benchmarks and rollout tool.

Every real process the project drives (redis-server, Cluster and Sentinel,
HAProxy, ``pingpong serve``) is started, waited for and stopped here, once, so
tests, ``bench`` and ``pingpong-rollout`` share one tested way of doing it.
The service itself never imports this package.
"""
