"""``python -m desktop.cli`` (and ``torchrun ... -m desktop.cli retrain``)."""

import sys

from desktop.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
