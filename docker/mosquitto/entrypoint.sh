#!/bin/sh
# Broker entrypoint: writes mosquitto's configuration and password file from the environment,
# then runs mosquitto (which drops root for the `mosquitto` user). POSIX sh: works in the
# Debian-based odc-mosquitto image and in the Alpine-based eclipse-mosquitto:2.
#
#   ODC_MQTT_USERS  whitespace- or comma-separated user:password pairs (required)
#   ODC_MQTT_PORT   listener port (default 1883)
#   ODC_MQTT_BIND   listener address (default: all interfaces)
#   ODC_MQTT_CONF_DIR  where acl lives (default /etc/odc-mosquitto, the compose mount)
#   ODC_MQTT_RUN_DIR   where the generated files go (default /tmp/odc-mosquitto)
#   ODC_MQTT_RUN_AS    user mosquitto runs as once started as root (default mosquitto)
#   ODC_MQTT_BRIDGE_CONF  a bridge section to append (see bridge.conf.example)
set -eu
conf_dir=${ODC_MQTT_CONF_DIR:-/etc/odc-mosquitto}
run_dir=${ODC_MQTT_RUN_DIR:-/tmp/odc-mosquitto}
port=${ODC_MQTT_PORT:-1883}
run_as=${ODC_MQTT_RUN_AS:-mosquitto}

if [ -z "${ODC_MQTT_USERS:-}" ]; then
    echo "odc-mosquitto: ODC_MQTT_USERS is empty: give user:password pairs" >&2
    exit 2
fi
mkdir -p "$run_dir"
umask 077
: > "$run_dir/passwd"
for pair in $(echo "$ODC_MQTT_USERS" | tr ',' ' '); do
    case "$pair" in
        *:?*) ;;
        *) echo "odc-mosquitto: ODC_MQTT_USERS: '${pair%%:*}' has no password" >&2; exit 2 ;;
    esac
    printf '%s\n' "$pair" >> "$run_dir/passwd"
done
# The health probe's password is made here and never leaves the container.
probe_pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf 'odc-probe:%s\n' "$probe_pw" >> "$run_dir/passwd"
printf '%s\n' "$probe_pw" > "$run_dir/probe"
printf '%s\n' "$port" > "$run_dir/port"
mosquitto_passwd -U "$run_dir/passwd"

cat > "$run_dir/mosquitto.conf" <<CONF
per_listener_settings false
user $run_as
listener $port ${ODC_MQTT_BIND:-}
allow_anonymous false
password_file $run_dir/passwd
acl_file $conf_dir/acl
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
CONF
if [ -n "${ODC_MQTT_BRIDGE_CONF:-}" ]; then
    if [ ! -r "$ODC_MQTT_BRIDGE_CONF" ]; then
        echo "odc-mosquitto: ODC_MQTT_BRIDGE_CONF: cannot read $ODC_MQTT_BRIDGE_CONF" >&2
        exit 2
    fi
    { echo; cat "$ODC_MQTT_BRIDGE_CONF"; } >> "$run_dir/mosquitto.conf"
fi
if [ "$(id -u)" = 0 ] && id "$run_as" > /dev/null 2>&1; then
    chown -R "$run_as" "$run_dir"
fi
chmod 0755 "$run_dir"
exec mosquitto -c "$run_dir/mosquitto.conf"
