#!/usr/bin/env bash
# The test command (README, .ci/run): set up, then run every test group in
# its own pytest process (Nova's harness monkey-patches with eventlet, which
# must not leak into the data-plane tests), and print one closing line.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
bash tools/setup.sh || exit 1

DEFAULT_GROUPS="unit devstack functional osc watcher prometheus replica replica_guest packaging libvirt e2e libvirt_e2e"
TEST_GROUPS=${NETAWARE_TEST_GROUPS:-$DEFAULT_GROUPS}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rc=0
for g in $TEST_GROUPS; do
    [ -d "tests/$g" ] || continue
    echo "=== tests/$g ==="
    start=$(date +%s)
    .venv/bin/python -m pytest "tests/$g" -q -p no:cacheprovider \
        --junitxml="$out/$g.xml" "$@"
    r=$?
    echo "=== tests/$g: exit $r in $(( $(date +%s) - start )) s ==="
    # 5 = no tests collected: a group that has none yet is not a failure
    if [ $r -ne 0 ] && [ $r -ne 5 ]; then rc=1; fi
done
.venv/bin/python - "$out" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
t = f = e = s = 0
for path in glob.glob(sys.argv[1] + '/*.xml'):
    for suite in ET.parse(path).getroot().iter('testsuite'):
        t += int(suite.get('tests', 0)); f += int(suite.get('failures', 0))
        e += int(suite.get('errors', 0)); s += int(suite.get('skipped', 0))
print('%d passed, %d failed, %d skipped' % (t - f - e - s, f + e, s))
PY
exit $rc
