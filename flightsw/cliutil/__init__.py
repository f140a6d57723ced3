"""Command-line plumbing shared by the ``flightsw`` and ``groundstation`` commands.

``dispatch``: a parser from sub-command modules (and from the ``flightsw.commands``
entry-point group) and the run loop that prints expected errors in one line;
``clock_args``: the ``--time-scale`` / ``--epoch`` / ``--clock-anchor`` options of every
process that shares mission time. Public so both packages use them; the sub-commands
themselves live in ``flightsw/cli/`` and ``groundstation/cli/``.
"""
