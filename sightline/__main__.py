"""``python -m sightline`` is the same as the ``sightline`` command."""

import sys

from sightline.cli import main

sys.exit(main())
