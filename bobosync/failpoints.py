"""A test hook that kills the process at a named point of a run.

The fault tests set BOBOSYNC_CRASH_AT=<point> to prove that a run killed there
loses nothing and the next run recovers. Unset (always, in production) it does nothing.
Points: after_parse, after_athoc, after_commit, during_mapping_replace.
"""
import os

ENV_VAR = "BOBOSYNC_CRASH_AT"


def crash_point(name: str) -> None:
    """Die at once, like a SIGKILL, if the test hook names this point."""
    if os.environ.get(ENV_VAR) != name:
        return
    import signal
    if hasattr(signal, "SIGKILL"):
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(137)
