"""Entry point: no arguments launches the web app (the Hugging Face Space); otherwise see `python app.py --help`."""

import sys


def main() -> int:
    if len(sys.argv) > 1:
        from stargan_app.cli import main as cli_main

        return cli_main(sys.argv[1:])
    from stargan_app.ui.blocks import launch

    launch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
