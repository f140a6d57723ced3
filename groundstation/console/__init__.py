"""The operations console: a live web page, an HTTP API, alarms and Prometheus metrics.

``groundstation serve --http 127.0.0.1:8080`` runs it beside the ground station service;
``flightsw demo`` starts it too. See ``docs/console.md``. The service is
``groundstation.console.service.ConsoleService``; this package imports nothing itself, so
a command that needs only :mod:`groundstation.console.units` does not load aiohttp.
"""
