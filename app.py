"""Entry point of the Hugging Face Space: no arguments launches the web app; otherwise see `python app.py --help`."""

import sys

from stargan_app.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
