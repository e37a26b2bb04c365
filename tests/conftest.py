"""Every fixture of the suite that starts a real process comes from the toolkit:
redis_server, pingpong, pingpong_shared and one per storage topology
(storage_memory, storage_redis, storage_rediss, storage_sentinel,
storage_cluster, and ``storage`` chosen by parameter). See
src/pingpong_toolkit/fixtures.py."""

pytest_plugins = ["pingpong_toolkit.fixtures"]


def pytest_configure(config: object) -> None:
    """Refuse to run against a missing or stale compiled module (tests/compiled.py)."""
    import pytest

    from tests.compiled import REBUILD, stale_or_missing

    problems = stale_or_missing()
    if problems:
        raise pytest.UsageError("\n".join([*problems, REBUILD]))
