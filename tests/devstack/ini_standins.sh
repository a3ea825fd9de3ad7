# shellcheck shell=bash
# ---------------------------------------------------------------------------
# STAND-INS for devstack, used only by tests/devstack/test_plugin.py.
#
# devstack itself is not installed here. The ini helpers below are minimal
# copies of devstack's inc/ini-config (iniset, iniget_multiline,
# ini_has_option, iniset_multiline, iniadd: same sed logic, without the xtrace
# and -sudo handling); the other functions only record that they were called.
# ---------------------------------------------------------------------------

function ini_has_option {
    local file=$1 section=$2 option=$3 line
    line=$(sed -ne "/^\[$section\]/,/^\[.*\]/ { /^${option}[ \t]*=/ p; }" "$file")
    [ -n "$line" ]
}

function iniget {
    local file=$1 section=$2 option=$3 line
    line=$(sed -ne "/^\[$section\]/,/^\[.*\]/ { /^${option}[ \t]*=/ p; }" "$file")
    # shellcheck disable=SC2086
    echo ${line#*=}
}

function iniget_multiline {
    local file=$1 section=$2 option=$3 values
    values=$(sed -ne "/^\[$section\]/,/^\[.*\]/ { s/^${option}[ \t]*=[ \t]*//gp; }" "$file")
    # shellcheck disable=SC2086
    echo ${values}
}

function iniset {
    local file=$1 section=$2 option=$3 value=$4
    # shellcheck disable=SC2086
    value=$(echo $value | sed -e 's/\\/\\\\/g' -e 's/&/\\&/g')
    if [[ -z $section || -z $option ]]; then
        return
    fi
    if ! grep -q "^\[$section\]" "$file" 2>/dev/null; then
        echo -e "\n[$section]" >> "$file"
    fi
    if ! ini_has_option "$file" "$section" "$option"; then
        sed -i -e "/^\[$section\]/ a\\
$option = $value
" "$file"
    else
        local sep
        sep=$(echo -ne "\x01")
        sed -i -e '/^\['"${section}"'\]/,/^\[.*\]/ s'"${sep}"'^\('"${option}"'[ \t]*=[ \t]*\).*$'"${sep}"'\1'"${value}${sep}" "$file"
    fi
}

function iniset_multiline {
    local file=$1 section=$2 option=$3
    shift 3
    local values="" v
    for v in "$@"; do
        values="$v ${values}"
    done
    if ! grep -q "^\[$section\]" "$file"; then
        echo -e "\n[$section]" >> "$file"
    else
        sed -i -e "/^\[$section\]/,/^\[.*\]/ { /^${option}[ \t]*=/ d; }" "$file"
    fi
    for v in $values; do
        sed -i -e "/^\[$section\]/ a\\
$option = $v
" "$file"
    done
}

function iniadd {
    local file=$1 section=$2 option=$3
    shift 3
    local values
    values="$(iniget_multiline "$file" "$section" "$option") $*"
    # shellcheck disable=SC2086
    iniset_multiline "$file" "$section" "$option" $values
}

# Recording stand-ins: each appends "name args" to $STANDIN_CALLS.
function _standin_record {
    echo "$*" >> "${STANDIN_CALLS:-/dev/null}"
}
function echo_summary { echo "$*"; }
function define_plugin { _standin_record define_plugin "$@"; }
function setup_develop { _standin_record setup_develop "$@"; }
# As in devstack's functions-common, run_process and stop_process act only
# on enabled services.
function run_process {
    if is_service_enabled "$1"; then _standin_record run_process "$@"; fi
}
function stop_process {
    if is_service_enabled "$1"; then _standin_record stop_process "$@"; fi
}
# Services listed in $STANDIN_ENABLED_SERVICES (comma-separated) are enabled.
function is_service_enabled {
    [[ ",${STANDIN_ENABLED_SERVICES:-}," == *",$1,"* ]]
}
# Adds to $STANDIN_ENABLED_SERVICES (recorded too).
function enable_service {
    _standin_record enable_service "$@"
    STANDIN_ENABLED_SERVICES="${STANDIN_ENABLED_SERVICES:-},$1"
}
