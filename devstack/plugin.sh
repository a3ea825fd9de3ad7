# shellcheck shell=bash
# Devstack plugin of nova-netaware.
#
# Devstack *sources* this file as "plugin.sh <mode> [phase]", so it never
# calls exit. It uses devstack's functions: setup_develop, is_service_enabled,
# run_process, stop_process, and the ini helpers iniset / iniadd.
#
# The nova.conf lines are decided by nova_netaware.deploy.nova_conf (shared
# with the local stack, nova_netaware.deploy.localstack); "python -m
# nova_netaware.deploy edits" reads $NOVA_CONF and prints the
# edits still needed as "set|add<TAB>section<TAB>option<TAB>value"; this
# file applies them with iniset (set) and iniadd (add). A second run prints
# nothing, so nothing is duplicated.

# Print the [netaware] settings as --set NAME=VALUE arguments, one a line.
function _netaware_settings_args {
    local pair
    printf -- '--set\ntopology_file=%s\n' "$NETAWARE_TOPOLOGY_FILE"
    printf -- '--set\ntraffic_source=%s\n' "$NETAWARE_TRAFFIC_SOURCE"
    printf -- '--set\nstatic_traffic_file=%s\n' "$NETAWARE_TRAFFIC_FILE"
    printf -- '--set\napply_to_boots=%s\n' "$NETAWARE_APPLY_TO_BOOTS"
    printf -- '--set\non_missing_data=%s\n' "$NETAWARE_ON_MISSING_DATA"
    printf -- '--set\nmax_link_utilization=%s\n' "$NETAWARE_MAX_LINK_UTILIZATION"
    printf -- '--set\nmax_hops=%s\n' "$NETAWARE_MAX_HOPS"
    printf -- '--set\ndirty_rate_mbps=%s\n' "$NETAWARE_DIRTY_RATE_MBPS"
    printf -- '--set\nweight_multiplier=%s\n' "$NETAWARE_WEIGHT_MULTIPLIER"
    for pair in $NETAWARE_EXTRA_OPTS; do
        printf -- '--set\n%s\n' "$pair"
    done
}

# The base install is the scheduler plugin; the replica agent's
# dependencies (the [replica] extra: NetfilterQueue needs gcc and
# libnetfilter-queue-dev) only where the agent's service is enabled, and
# The flow meter's (the [meter] extra: prometheus-client) where its
# service is enabled.
function install_nova_netaware {
    local extras=()
    if is_service_enabled "$NETAWARE_REPLICA_AGENT_SERVICE"; then
        extras+=(replica)
    fi
    if is_service_enabled "$NETAWARE_FLOW_METER_SERVICE"; then
        extras+=(meter)
    fi
    if [[ ${#extras[@]} -gt 0 ]]; then
        setup_develop "$NOVA_NETAWARE_DIR" "$(IFS=,; echo "${extras[*]}")"
    else
        setup_develop "$NOVA_NETAWARE_DIR"
    fi
}

# Write the topology (hosts on a leaf-spine) and an empty traffic file,
# unless the operator provided them.
function configure_nova_netaware_data {
    mkdir -p "$(dirname "$NETAWARE_TOPOLOGY_FILE")" "$(dirname "$NETAWARE_TRAFFIC_FILE")"
    if [[ ! -e "$NETAWARE_TOPOLOGY_FILE" ]]; then
        # shellcheck disable=SC2086
        "$NETAWARE_PYTHON" -m nova_netaware.deploy topology \
            --output "$NETAWARE_TOPOLOGY_FILE" \
            --hosts-per-leaf "$NETAWARE_HOSTS_PER_LEAF" \
            --spines "$NETAWARE_SPINES" $NETAWARE_COMPUTE_HOSTS || return 1
    fi
    if [[ ! -e "$NETAWARE_TRAFFIC_FILE" ]]; then
        echo "flows: []" > "$NETAWARE_TRAFFIC_FILE"
    fi
}

function configure_nova_netaware {
    local edits op section option value
    local -a args
    configure_nova_netaware_data || return 1
    mapfile -t args < <(_netaware_settings_args)
    edits=$("$NETAWARE_PYTHON" -m nova_netaware.deploy edits \
        --config-file "$NOVA_CONF" "${args[@]}") || return 1
    while IFS=$'\t' read -r op section option value; do
        case "$op" in
            set) iniset "$NOVA_CONF" "$section" "$option" "$value" ;;
            add) iniadd "$NOVA_CONF" "$section" "$option" "$value" ;;
            '') ;;
            *) echo "nova-netaware: unknown edit '$op'" >&2; return 1 ;;
        esac
    done <<< "$edits"
}

# ---------------------------------------------------------------------------
# The replica agent on a compute node (enable_service netaware-replica-agent
# on a node that runs n-cpu).
#
# Decision: one agent per replica pair file. "nova-netaware-replica-agent
# replicate" writes one [replica] file per side of a pair
# (<service>.active.conf, <service>.standby.conf) holding what only the pair
# knows (agent_id, service_name, initial_role, openstack_server, peer_host,
# peer_hmac_key, guest_*). The operator puts the file of each side into
# $NETAWARE_REPLICA_CONFIG_DIR on that side's hypervisor. For each *.conf
# there, this plugin writes the agent's own file
# $NETAWARE_REPLICA_AGENT_CONF_DIR/<name>.conf: the pair file, then
#  1. defaults for what the pair file may leave out: coordination_url,
#     state_dir, control_socket (one per agent, so agents never share them);
#  2. every NETAWARE_REPLICA_<OPTION> variable that is set (devstack/settings
#     sets cloud_driver=openstack, openstack_cloud=devstack-admin,
#     openstack_config_file, openstack_control=libvirt, libvirt_uri), over
#     the pair file: it was written wherever replicate ran, with that
#     machine's clouds.yaml (and --pause-control api by default), while the
#     agent here acts on its own cloud's Nova and on its own hypervisor.
# The agent runs as devstack service netaware-replica-agent-<name> (root:
# its data plane installs iptables rules and an NFQUEUE). The started
# services are recorded in $NETAWARE_DATA_DIR/replica-agents.services for
# unstack, since devstack only stops services it knows are enabled.
# ---------------------------------------------------------------------------

# The plugin's own NETAWARE_REPLICA_* variables, which are not [replica]
# options of the same name (the defaults of step 1 among them).
_NETAWARE_REPLICA_PLUGIN_VARS="NETAWARE_REPLICA_AGENT_SERVICE
NETAWARE_REPLICA_AGENT_BIN NETAWARE_REPLICA_CONFIG_DIR
NETAWARE_REPLICA_AGENT_CONF_DIR NETAWARE_REPLICA_STATE_DIR
NETAWARE_REPLICA_RUN_DIR NETAWARE_REPLICA_REDIS_PORT
NETAWARE_REPLICA_COORDINATION_URL NETAWARE_REPLICA_EXTRA_OPTS"

# True if a Redis server answers PING at host $1 port $2 (within 3 s).
function _netaware_redis_answers {
    local reply
    # shellcheck disable=SC2016
    reply=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" &&
        printf "PING\r\n" >&3 && head -c 5 <&3' "$1" "$2" 2>/dev/null) ||
        return 1
    [[ "$reply" == "+PONG" ]]
}

# The coordination_url default: $NETAWARE_REPLICA_COORDINATION_URL if set;
# else Redis on the controller ($SERVICE_HOST) if it answers there; else
# file:// under the state directory, which fences agents on this host only.
function _netaware_replica_coordination_url {
    local host=${SERVICE_HOST:-127.0.0.1}
    if [[ -n "$NETAWARE_REPLICA_COORDINATION_URL" ]]; then
        echo "$NETAWARE_REPLICA_COORDINATION_URL"
    elif _netaware_redis_answers "$host" "$NETAWARE_REPLICA_REDIS_PORT"; then
        [[ "$host" == *:* ]] && host="[$host]"
        echo "redis://$host:$NETAWARE_REPLICA_REDIS_PORT"
    else
        echo "nova-netaware: no Redis at $host:$NETAWARE_REPLICA_REDIS_PORT; coordination_url is file:// (fences agents on this host only; set NETAWARE_REPLICA_COORDINATION_URL for agents in two clouds)" >&2
        echo "file://$NETAWARE_REPLICA_STATE_DIR/coordination"
    fi
}

# Print "option value" for every NETAWARE_REPLICA_<OPTION> variable that is
# not one of the plugin's own; an unknown option is an error (a typo must
# not be dropped silently).
function _netaware_replica_var_opts {
    local var opt opts
    opts=" $("$NETAWARE_PYTHON" -c 'from nova_netaware.replica import conf
print(" ".join(o.dest for o in conf.ALL_OPTS))') " || return 1
    for var in $(compgen -v NETAWARE_REPLICA_); do
        if [[ " ${_NETAWARE_REPLICA_PLUGIN_VARS//$'\n'/ } " == *" $var "* ]]; then
            continue
        fi
        if [[ -z "${!var}" ]]; then
            continue    # empty: the pair file's value or the default
        fi
        opt=${var#NETAWARE_REPLICA_}
        opt=${opt,,}
        if [[ "$opts" != *" $opt "* ]]; then
            echo "nova-netaware: $var: [replica] has no option $opt" >&2
            return 1
        fi
        printf '%s %s\n' "$opt" "${!var}"
    done
    for var in $NETAWARE_REPLICA_EXTRA_OPTS; do
        opt=${var%%=*}
        if [[ "$var" != *=* || "$opts" != *" $opt "* ]]; then
            echo "nova-netaware: NETAWARE_REPLICA_EXTRA_OPTS: [replica] has no option '$opt'" >&2
            return 1
        fi
        printf '%s %s\n' "$opt" "${var#*=}"
    done
}

# Write the agent's configuration $2 from pair file $1 and the option
# lines $3 ("option value", from _netaware_replica_var_opts): steps 1, 2.
function _netaware_replica_write_conf {
    local pair=$1 conf=$2 var_opts=$3 name opt value coordination
    name=$(basename "$conf" .conf)
    install -m 600 "$pair" "$conf" || return 1
    if ! ini_has_option "$conf" replica coordination_url; then
        coordination=$(_netaware_replica_coordination_url) || return 1
        iniset "$conf" replica coordination_url "$coordination"
    fi
    if ! ini_has_option "$conf" replica state_dir; then
        iniset "$conf" replica state_dir "$NETAWARE_REPLICA_STATE_DIR/$name"
    fi
    if ! ini_has_option "$conf" replica control_socket; then
        iniset "$conf" replica control_socket "$NETAWARE_REPLICA_RUN_DIR/$name.sock"
    fi
    while read -r opt value; do
        if [[ -n "$opt" ]]; then
            iniset "$conf" replica "$opt" "$value"
        fi
    done <<< "$var_opts"
}

# The drop-in that puts a libvirt daemon in SCHED_FIFO (settings,
# NETAWARE_LIBVIRT_REALTIME_PRIORITY).
_NETAWARE_RT_DROPIN=nova-netaware-realtime.conf
# The libvirt daemon units it may apply to (whichever systemd has).
_NETAWARE_LIBVIRT_UNITS="libvirtd.service virtqemud.service"

# The path of that drop-in for unit $1.
function _netaware_rt_dropin {
    echo "$NETAWARE_SYSTEMD_UNIT_DIR/$1.d/$_NETAWARE_RT_DROPIN"
}

# Run a command as root: devstack runs as an unprivileged user with sudo.
function _netaware_as_root {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    else
        sudo "$@"
    fi
}

# The libvirt daemon units systemd has on this node, one a line.
function _netaware_libvirt_units {
    local unit
    for unit in $_NETAWARE_LIBVIRT_UNITS; do
        if systemctl cat "$unit" > /dev/null 2>&1; then
            echo "$unit"
        fi
    done
}

# Run this compute's libvirt daemon in SCHED_FIFO at
# NETAWARE_LIBVIRT_REALTIME_PRIORITY (nothing at 0).
function _netaware_libvirt_realtime {
    local prio=$NETAWARE_LIBVIRT_REALTIME_PRIORITY unit dropin
    local -a units
    if [[ ! "$prio" =~ ^[0-9]+$ ]] || (( 10#$prio > 99 )); then
        echo "nova-netaware: NETAWARE_LIBVIRT_REALTIME_PRIORITY=$prio: expected 0 (off) or a SCHED_FIFO priority 1-99" >&2
        return 1
    fi
    prio=$((10#$prio))
    if (( prio == 0 )); then
        return 0
    fi
    mapfile -t units < <(_netaware_libvirt_units)
    if [[ ${#units[@]} -eq 0 ]]; then
        echo "nova-netaware: NETAWARE_LIBVIRT_REALTIME_PRIORITY=$prio but systemd has no libvirtd.service or virtqemud.service here: libvirt's class left as it is" >&2
        return 0
    fi
    for unit in "${units[@]}"; do
        dropin=$(_netaware_rt_dropin "$unit")
        _netaware_as_root mkdir -p "$(dirname "$dropin")" || return 1
        printf '# written by the nova-netaware devstack plugin (NETAWARE_LIBVIRT_REALTIME_PRIORITY)\n[Service]\nCPUSchedulingPolicy=fifo\nCPUSchedulingPriority=%d\n' \
            "$prio" | _netaware_as_root tee "$dropin" > /dev/null || return 1
    done
    _netaware_as_root systemctl daemon-reload || return 1
    for unit in "${units[@]}"; do
        _netaware_as_root systemctl restart "$unit" || return 1
        echo "nova-netaware: $unit runs in SCHED_FIFO $prio; QEMUs it starts inherit it, running guests keep their class until restarted"
    done
}

# Undo _netaware_libvirt_realtime: remove the drop-ins it wrote, restart.
function _netaware_libvirt_realtime_off {
    local unit dropin
    local -a units=()
    for unit in $_NETAWARE_LIBVIRT_UNITS; do
        dropin=$(_netaware_rt_dropin "$unit")
        if [[ -e "$dropin" ]]; then
            _netaware_as_root rm -f "$dropin"
            units+=("$unit")
        fi
    done
    if [[ ${#units[@]} -eq 0 ]]; then
        return 0
    fi
    _netaware_as_root systemctl daemon-reload
    for unit in "${units[@]}"; do
        _netaware_as_root systemctl restart "$unit"
    done
}

# Write each pair's agent configuration, check it with the agent's own
# loader (nova_netaware.replica.cmd.make_conf) and start the agent.
function start_nova_netaware_replica_agent {
    local bin pair name service conf var_opts
    local -a pairs=()
    local -A seen=()
    if ! is_service_enabled "$NETAWARE_REPLICA_AGENT_SERVICE"; then
        return 0
    fi
    if ! is_service_enabled n-cpu; then
        echo "nova-netaware: $NETAWARE_REPLICA_AGENT_SERVICE runs on computes; n-cpu is not enabled here: not starting it"
        return 0
    fi
    _netaware_libvirt_realtime || return 1
    if ! bin=$(command -v "$NETAWARE_REPLICA_AGENT_BIN"); then
        echo "nova-netaware: $NETAWARE_REPLICA_AGENT_BIN is not installed; not starting $NETAWARE_REPLICA_AGENT_SERVICE"
        return 0
    fi
    for pair in "$NETAWARE_REPLICA_CONFIG_DIR"/*.conf; do
        if [[ -f "$pair" ]]; then
            pairs+=("$pair")
        fi
    done
    if [[ ${#pairs[@]} -eq 0 ]]; then
        echo "nova-netaware: no replica pair file (*.conf) in $NETAWARE_REPLICA_CONFIG_DIR: no agent started. Create a pair with 'nova-netaware-replica-agent replicate --from CLOUD:SERVER --to CLOUD --config-dir DIR', copy each side's file into $NETAWARE_REPLICA_CONFIG_DIR on that side's compute and run 'stack extra' again (docs/replica.md, Devstack)."
        return 0
    fi
    var_opts=$(_netaware_replica_var_opts) || return 1
    mkdir -p "$NETAWARE_DATA_DIR" "$NETAWARE_REPLICA_AGENT_CONF_DIR" || return 1
    for pair in "${pairs[@]}"; do
        name=$(basename "$pair" .conf)
        name=${name//[^A-Za-z0-9_-]/-}
        if [[ -n "${seen[$name]:-}" ]]; then
            echo "nova-netaware: $pair and ${seen[$name]} both give agent name $name; rename one" >&2
            return 1
        fi
        seen[$name]=$pair
    done
    for pair in "${pairs[@]}"; do
        name=$(basename "$pair" .conf)
        name=${name//[^A-Za-z0-9_-]/-}
        service=$NETAWARE_REPLICA_AGENT_SERVICE-$name
        conf=$NETAWARE_REPLICA_AGENT_CONF_DIR/$name.conf
        _netaware_replica_write_conf "$pair" "$conf" "$var_opts" || return 1
        if ! "$NETAWARE_PYTHON" -c 'import sys
from nova_netaware.replica import cmd
cmd.make_conf(["--config-file", sys.argv[1], "status"])' "$conf"; then
            echo "nova-netaware: $conf (from $pair) does not load; $service not started" >&2
            return 1
        fi
        echo "$service" >> "$NETAWARE_DATA_DIR/replica-agents.services"
        enable_service "$service"
        run_process "$service" "$bin --config-file $conf run" "" root
    done
}

# Stop every agent "stack extra" started (devstack's stop_process acts only
# on enabled services, and the per-pair ones are enabled at start only).
function stop_nova_netaware_replica_agent {
    local list=$NETAWARE_DATA_DIR/replica-agents.services service
    local -a services
    if [[ ! -r "$list" ]]; then
        return 0
    fi
    mapfile -t services < <(sort -u "$list")
    for service in "${services[@]}"; do
        enable_service "$service"
        stop_process "$service"
    done
    rm -f "$list"
}

# The flow meter on this node (a compute) if its service is enabled; as
# root, since it installs an nftables table (deleted when it stops).
function start_nova_netaware_flow_meter {
    local cmd pattern
    local -a patterns
    if ! is_service_enabled "$NETAWARE_FLOW_METER_SERVICE"; then
        return 0
    fi
    if ! command -v "$NETAWARE_FLOW_METER_BIN" > /dev/null; then
        echo "nova-netaware: $NETAWARE_FLOW_METER_BIN is not installed; not starting $NETAWARE_FLOW_METER_SERVICE"
        return 0
    fi
    cmd="$(command -v "$NETAWARE_FLOW_METER_BIN") --port $NETAWARE_FLOW_METER_PORT"
    # the patterns are nft wildcards, not file names: no globbing
    read -ra patterns <<< "$NETAWARE_FLOW_METER_GUEST_PORTS"
    for pattern in "${patterns[@]}"; do
        cmd+=" --guest-ports $pattern"
    done
    if [[ -n "$NETAWARE_FLOW_METER_ARGS" ]]; then
        cmd+=" $NETAWARE_FLOW_METER_ARGS"
    fi
    run_process "$NETAWARE_FLOW_METER_SERVICE" "$cmd" "" root
}

function stop_nova_netaware_flow_meter {
    if is_service_enabled "$NETAWARE_FLOW_METER_SERVICE"; then
        stop_process "$NETAWARE_FLOW_METER_SERVICE"
    fi
}

function cleanup_nova_netaware {
    # Only the files this plugin generated; an operator's own topology or
    # traffic file outside the data dir is left alone.
    rm -rf "$NETAWARE_DATA_DIR"
}

if [[ "$1" == "stack" ]]; then
    case "$2" in
        install)
            echo_summary "Installing nova-netaware"
            install_nova_netaware
            ;;
        post-config)
            echo_summary "Configuring nova-netaware in $NOVA_CONF"
            configure_nova_netaware
            ;;
        extra)
            start_nova_netaware_replica_agent
            start_nova_netaware_flow_meter
            ;;
    esac
elif [[ "$1" == "unstack" ]]; then
    stop_nova_netaware_replica_agent
    _netaware_libvirt_realtime_off
    stop_nova_netaware_flow_meter
elif [[ "$1" == "clean" ]]; then
    cleanup_nova_netaware
fi
