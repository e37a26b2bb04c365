"""The service's one limiter and control plane live as long as the process:
a reload swaps the limiter's rules, nothing else is rebuilt."""

from __future__ import annotations

from pingpong.config import Settings
from pingpong.service import Service


async def test_a_reload_swaps_the_rules_of_the_one_limiter_and_control_plane_follows() -> None:
    service = Service(Settings(limit="3/minute"))
    limiter, control = service.limiter, service.control
    service.apply(Settings(limit="5/minute", trusted_proxies=["10.0.0.0/8"], ipv6_prefix=48))
    assert service.limiter is limiter and service.control is control
    assert [p.limit.capacity for p in limiter.rules.policies] == [5]
    assert (await control.inspect("default", "192.0.2.1"))["burst"] == 5
    # The control plane keys clients by the resolver now running.
    assert control.key_for("default", "2001:db8:1:2::9") == "2001:db8:1::/48"
