"""`stargan-app` (and `python -m stargan_app`, `python app.py`): no arguments serves the web app; a subcommand
(train, eval, export, publish, ...) goes to stargan_app/cli.py."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        from stargan_app.cli import main as cli_main

        return cli_main(argv)
    from stargan_app.ui.blocks import launch

    launch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
