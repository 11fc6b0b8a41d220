"""Entry point of the ``sandgym`` console script: the Rust CLI, run inside the extension module.

``sandgym serve`` is the exception: the OpenEnv-compatible server of :mod:`sandgym.integrations.openenv`.
"""

from __future__ import annotations

import signal
import sys

from sandgym import _core


def main(argv: list[str] | None = None) -> int:
    """Run ``sandgym`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["serve"]:
        # `serve` is a Python server (OpenEnv's protocol on starlette + uvicorn), not part of the Rust CLI;
        # uvicorn handles Ctrl-C itself, so the SIGINT change below must not apply to it.
        from sandgym.integrations.openenv import main as serve_main

        return serve_main(args[1:])
    # The Rust side runs without the GIL, where Python's SIGINT handler cannot run: let Ctrl-C end the
    # process directly. Finished Parquet parts are already complete on disk.
    if argv is None and hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    return _core.cli_main(["sandgym", *args])


if __name__ == "__main__":
    sys.exit(main())
