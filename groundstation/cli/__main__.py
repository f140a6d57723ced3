"""``python -m groundstation.cli``: the same as the ``groundstation`` console script."""

from groundstation.cli import main

raise SystemExit(main())
