"""``python -m pingpong_rollout``: the same as the ``pingpong-rollout`` command."""

import sys

from pingpong_rollout.cli import main

sys.exit(main())
