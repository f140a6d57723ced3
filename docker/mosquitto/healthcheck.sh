#!/bin/sh
# Broker health: an authenticated subscriber receives the broker's retained uptime.
run_dir=${ODC_MQTT_RUN_DIR:-/tmp/odc-mosquitto}
exec mosquitto_sub -h 127.0.0.1 -p "$(cat "$run_dir/port")" -u odc-probe \
    -P "$(cat "$run_dir/probe")" -t '$SYS/broker/uptime' -C 1 -W 5 > /dev/null
