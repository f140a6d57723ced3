"""``python -m flightsw.cli``: the same as the ``flightsw`` console script."""

from flightsw.cli import main

raise SystemExit(main())
