"""The ``pingpong`` command (and ``python -m pingpong``).

The lifecycle signals are held before anything else is imported: the imports
are most of the start-up time, and a SIGHUP or SIGTERM meanwhile would kill
the process (their default action). ``pingpong serve`` releases them once its
handlers are installed; every other command at once.
"""

from pingpong.server import signals


def main() -> int:
    signals.hold()
    from pingpong.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
