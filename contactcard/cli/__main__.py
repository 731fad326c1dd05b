"""``python -m contactcard.cli``."""

from . import main

raise SystemExit(main())
