from pingpong.core.storage.breaker import CircuitBreaker


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_probes_then_closes() -> None:
    clock = Clock()
    changes: list[bool] = []
    breaker = CircuitBreaker(3, 2.0, changes.append, clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert not breaker.is_open
    breaker.record_failure()
    assert breaker.is_open and changes == [True]
    assert not breaker.allow()
    clock.now = 2.0
    assert breaker.allow()  # one probe
    assert not breaker.allow()  # and only one
    breaker.record_failure()  # probe failed: open again, for another period
    assert not breaker.allow()
    clock.now = 4.0
    assert breaker.allow()
    breaker.record_success()
    assert not breaker.is_open and changes == [True, False]
    assert breaker.allow()
