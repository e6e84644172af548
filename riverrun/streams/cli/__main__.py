"""``python -m riverrun.streams.cli``: the ``riverrun`` command."""

import sys

from riverrun.streams.cli import main

sys.exit(main())
