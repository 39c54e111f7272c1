"""``python -m resnet_stability.reproduction``: runs :func:`resnet_stability.reproduction.cli.main`."""

import sys

from resnet_stability.reproduction.cli import main

if __name__ == "__main__":
    sys.exit(main())
