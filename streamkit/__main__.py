"""``python -m streamkit`` → the command line."""

import sys

from streamkit.cli import main

sys.exit(main())
