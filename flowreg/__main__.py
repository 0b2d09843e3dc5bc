"""``python -m flowreg``: the command line (see flowreg.cli)."""

from .cli import main

raise SystemExit(main())
