#!/bin/sh
# Broker entrypoint: writes mosquitto's configuration, password file and ACL from the
# environment, then runs mosquitto (which drops root for the `mosquitto` user). POSIX sh: works in the
# Debian-based odc-mosquitto image and in the Alpine-based eclipse-mosquitto:2.
#
# Accounts, by role: whitespace- or comma-separated user:password pairs (docs/docker.md).
# Each account gets its role's rules, roles/<role>.acl with {user} replaced by its name, as a
# `user` block of its own: no rule of one role ever applies to an account of another.
#   ODC_MQTT_NODES      satellite nodes (user name = node id)
#   ODC_MQTT_GROUND     the ground station service
#   ODC_MQTT_OPERATORS  ground clients: requests to the ground station, node traffic read-only
#   ODC_MQTT_VIEWERS    read-only: node telemetry and status, job records
#   ODC_MQTT_CONSOLES   the operations console: an operator that may send telecommands
#   ODC_MQTT_USERS      accounts whose rules are in ODC_MQTT_ACL_EXTRA (e.g. a bridge)
#   ODC_MQTT_ACL_EXTRA  a file of more ACL rules, appended
# At least one account is required. User names: 1-64 of [A-Za-z0-9_.-], each once.
#
#   ODC_MQTT_TLS_DIR    a directory with broker.crt, broker.key and ca.crt (made by
#                       docker/make_secrets.py): the listener speaks TLS only
#   ODC_MQTT_DATA_DIR   persistence directory (default /var/lib/odc-mosquitto); persistence
#                       is always on (docs/docker.md, "Persistence")
#   ODC_MQTT_AUTOSAVE_S seconds between saves of the database while running (default 5)
#   ODC_MQTT_PORT       listener port (default 8883 with TLS, else 1883)
#   ODC_MQTT_BIND       listener address (default: all interfaces)
#   ODC_MQTT_CONF_DIR   where roles/ lives (default: this script's directory)
#   ODC_MQTT_RUN_DIR    where the generated files go (default /tmp/odc-mosquitto)
#   ODC_MQTT_RUN_AS     user mosquitto runs as once started as root (default mosquitto)
#   ODC_MQTT_BRIDGE_CONF  a bridge section to append (see bridge.conf.example)
set -eu
conf_dir=${ODC_MQTT_CONF_DIR:-$(cd "$(dirname "$0")" && pwd)}
run_dir=${ODC_MQTT_RUN_DIR:-/tmp/odc-mosquitto}
data_dir=${ODC_MQTT_DATA_DIR:-/var/lib/odc-mosquitto}
autosave=${ODC_MQTT_AUTOSAVE_S:-5}
tls_dir=${ODC_MQTT_TLS_DIR:-}
run_as=${ODC_MQTT_RUN_AS:-mosquitto}
if [ -n "$tls_dir" ]; then port=${ODC_MQTT_PORT:-8883}; else port=${ODC_MQTT_PORT:-1883}; fi

die() {
    echo "odc-mosquitto: $*" >&2
    exit 2
}
case "$autosave" in
    ''|*[!0-9]*|0) die "ODC_MQTT_AUTOSAVE_S: a whole number of seconds >= 1, got '$autosave'" ;;
esac

mkdir -p "$run_dir"
umask 077
: > "$run_dir/passwd"
: > "$run_dir/acl"
: > "$run_dir/users"

# add_accounts VARIABLE ROLE: one password line and one ACL block per account
add_accounts() {
    eval "pairs=\${$1:-}"
    for pair in $(echo "$pairs" | tr ',' ' '); do
        user=${pair%%:*}
        case "$pair" in
            *:?*) ;;
            *) die "$1: '$user' has no password" ;;
        esac
        case "$user" in
            ''|*[!A-Za-z0-9_.-]*) die "$1: user name '$user': use 1-64 of A-Z a-z 0-9 _ . -" ;;
        esac
        [ "${#user}" -le 64 ] || die "$1: user name '$user' is longer than 64"
        if grep -qx "$user" "$run_dir/users" || [ "$user" = odc-probe ]; then
            die "$1: user '$user' is given twice (or is the reserved odc-probe)"
        fi
        echo "$user" >> "$run_dir/users"
        printf '%s\n' "$pair" >> "$run_dir/passwd"
        if [ -n "$2" ]; then
            [ -r "$conf_dir/roles/$2.acl" ] || die "no role template $conf_dir/roles/$2.acl"
            { echo; sed -e "/^#/d" -e "s/{user}/$user/g" "$conf_dir/roles/$2.acl"; } >> "$run_dir/acl"
        fi
    done
}
add_accounts ODC_MQTT_NODES node
add_accounts ODC_MQTT_GROUND ground
add_accounts ODC_MQTT_OPERATORS operator
add_accounts ODC_MQTT_VIEWERS viewer
add_accounts ODC_MQTT_CONSOLES console
add_accounts ODC_MQTT_USERS ""
[ -s "$run_dir/users" ] || die "no accounts: give ODC_MQTT_NODES, ODC_MQTT_GROUND, ... (user:password pairs)"
if [ -n "${ODC_MQTT_ACL_EXTRA:-}" ]; then
    [ -r "$ODC_MQTT_ACL_EXTRA" ] || die "ODC_MQTT_ACL_EXTRA: cannot read $ODC_MQTT_ACL_EXTRA"
    { echo; cat "$ODC_MQTT_ACL_EXTRA"; } >> "$run_dir/acl"
fi

# The health probe's password is made here and never leaves the container.
probe_pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf 'odc-probe:%s\n' "$probe_pw" >> "$run_dir/passwd"
printf '\nuser odc-probe\ntopic read $SYS/broker/uptime\n' >> "$run_dir/acl"
printf '%s\n' "$probe_pw" > "$run_dir/probe"
printf '%s\n' "$port" > "$run_dir/port"
mosquitto_passwd -U "$run_dir/passwd"

listener="listener $port ${ODC_MQTT_BIND:-}"
if [ -n "$tls_dir" ]; then
    for f in broker.crt broker.key ca.crt; do
        [ -r "$tls_dir/$f" ] || die "ODC_MQTT_TLS_DIR: no $tls_dir/$f (make it with docker/make_secrets.py)"
    done
    # copies the broker can read after dropping root (the mounted key is the host user's, 0600)
    mkdir -p "$run_dir/tls"
    cp "$tls_dir/broker.crt" "$tls_dir/broker.key" "$tls_dir/ca.crt" "$run_dir/tls/"
    listener="$listener
certfile $run_dir/tls/broker.crt
keyfile $run_dir/tls/broker.key
tls_version tlsv1.2"
fi
mkdir -p "$data_dir"

cat > "$run_dir/mosquitto.conf" <<CONF
per_listener_settings false
user $run_as
$listener
allow_anonymous false
password_file $run_dir/passwd
acl_file $run_dir/acl
persistence true
persistence_location $data_dir/
autosave_interval $autosave
log_dest stderr
log_type error
log_type warning
log_type notice
connection_messages true
CONF
if [ -n "${ODC_MQTT_BRIDGE_CONF:-}" ]; then
    [ -r "$ODC_MQTT_BRIDGE_CONF" ] || die "ODC_MQTT_BRIDGE_CONF: cannot read $ODC_MQTT_BRIDGE_CONF"
    { echo; cat "$ODC_MQTT_BRIDGE_CONF"; } >> "$run_dir/mosquitto.conf"
fi
if [ "$(id -u)" = 0 ] && id "$run_as" > /dev/null 2>&1; then
    chown -R "$run_as" "$run_dir" "$data_dir"
fi
chmod 0755 "$run_dir"
exec mosquitto -c "$run_dir/mosquitto.conf"
