"""``python -m visionforge`` runs the CLI."""

import sys

from visionforge.cli.main import main

sys.exit(main())
