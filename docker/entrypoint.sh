#!/bin/sh
# Runs the command given to the container: `flightsw ...` or `groundstation ...` (or any
# other program in the image). A first argument that is a sub-command is routed for short
# `docker run odc node ...` / `docker run odc serve ...` forms.
set -e
case "${1:-}" in
    node|sim|demo|profiles|eclipses|passes)
        set -- flightsw "$@" ;;
    serve|submit|jobs|result|tail|replay|report|models)
        set -- groundstation "$@" ;;
    "")
        set -- flightsw --help ;;
esac
exec "$@"
