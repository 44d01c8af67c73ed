"""`python -m centerkit <command>`: the user commands of commands.py."""

import sys

from .commands import main

sys.exit(main())
