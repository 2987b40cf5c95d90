"""``python -m stream.cli``: the ``rfm-stream`` command."""

import sys

from stream.cli.main import main

sys.exit(main())
