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

function start_nova_netaware_replica_agent {
    if is_service_enabled "$NETAWARE_REPLICA_AGENT_SERVICE"; then
        if [[ ! -r "$NETAWARE_REPLICA_AGENT_CONF" ]]; then
            echo "nova-netaware: no $NETAWARE_REPLICA_AGENT_CONF (see etc/replica-agent.conf.sample); not starting $NETAWARE_REPLICA_AGENT_SERVICE"
        elif command -v "$NETAWARE_REPLICA_AGENT_BIN" > /dev/null; then
            run_process "$NETAWARE_REPLICA_AGENT_SERVICE" \
                "$(command -v "$NETAWARE_REPLICA_AGENT_BIN") --config-file $NETAWARE_REPLICA_AGENT_CONF run"
        else
            echo "nova-netaware: $NETAWARE_REPLICA_AGENT_BIN is not installed; not starting $NETAWARE_REPLICA_AGENT_SERVICE"
        fi
    fi
}

function stop_nova_netaware_replica_agent {
    if is_service_enabled "$NETAWARE_REPLICA_AGENT_SERVICE"; then
        stop_process "$NETAWARE_REPLICA_AGENT_SERVICE"
    fi
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
    stop_nova_netaware_flow_meter
elif [[ "$1" == "clean" ]]; then
    cleanup_nova_netaware
fi
