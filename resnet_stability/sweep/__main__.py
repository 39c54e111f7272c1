"""``python -m resnet_stability.sweep``: runs :func:`resnet_stability.sweep.cli.main`."""

import sys

from resnet_stability.sweep.cli import main

if __name__ == "__main__":
    sys.exit(main())
