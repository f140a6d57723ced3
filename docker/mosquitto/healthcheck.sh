#!/bin/sh
# Broker health: an authenticated subscriber receives the broker's retained uptime (over TLS,
# verifying the broker's certificate against the CA, when the listener speaks TLS).
run_dir=${ODC_MQTT_RUN_DIR:-/tmp/odc-mosquitto}
set -- -h 127.0.0.1 -p "$(cat "$run_dir/port")"
if [ -f "$run_dir/tls/broker.crt" ]; then
    set -- "$@" --cafile "$run_dir/tls/ca.crt"
fi
exec mosquitto_sub "$@" -u odc-probe -P "$(cat "$run_dir/probe")" -t '$SYS/broker/uptime' \
    -C 1 -W 5 > /dev/null
