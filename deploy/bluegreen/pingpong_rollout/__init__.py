"""Blue-green rollout of pingpong on one machine, through a real HAProxy.

    pingpong-rollout run    ...   blue and HAProxy already run (the normal case):
                                  start green, shift traffic step by step while
                                  green's metrics pass, then drain blue; or roll back.
    pingpong-rollout drill  ...   the same, self-contained: starts Redis, blue,
                                  HAProxy and a steady load itself, then cleans up.
    pingpong-rollout render-config ...   print haproxy.cfg for a standing setup.

Exit status: 0 promoted, 1 rolled back (analysis failed or interrupted),
2 usage error, 3 could not start (HAProxy unreachable, blue not serving, green
never ready). See docs/bluegreen.md.

Modules: ``cli`` (arguments), ``commands`` (run, render-config), ``drill``,
``rollout`` (the phases), ``plan`` (what a rollout is told), ``analysis``
(green's /metrics and the verdict), ``report``, ``load`` (steady load),
``haproxy_config`` (the template).
"""
