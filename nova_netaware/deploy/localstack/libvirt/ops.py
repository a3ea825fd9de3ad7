"""Plain-libvirt operations on the lab (no Nova): boot a guest with
``virsh``, talk to a guest's service, live-migrate with a reply probe."""

import os
import subprocess
import sys
import tempfile
import time

from nova_netaware.deploy.localstack.libvirt import fabric
from nova_netaware.deploy.localstack.libvirt import guest
from nova_netaware.deploy.localstack.libvirt import hypervisor


def guest_get(lab, host, ip, path, timeout=2):
    """GET http://ip/path from inside ``host``'s namespace (over the
    guest overlay); the body, or None when the guest does not answer."""
    ns = lab.plan['hosts'][host]['ns']
    res = subprocess.run(['ip', 'netns', 'exec', ns, 'curl', '-s', '-m',
                          str(timeout), 'http://%s%s' % (ip, path)],
                         capture_output=True, text=True)
    return res.stdout if res.returncode == 0 else None


def boot(lab, host, ip, mem_mib=96, timeout=180):
    """Create a transient domain on ``host`` with the lab image and the
    MAC of ``ip``; wait until its service answers. Returns (name, seconds
    from ``virsh create`` to the first answer)."""
    name = 'nvl-vm-' + ip.replace('.', '-')
    xml = hypervisor.domain_xml(name, guest.mac_for_ip(ip),
                                lab.state['image'], fabric.GUEST_BRIDGE,
                                mem_mib)
    with tempfile.NamedTemporaryFile('w', suffix='.xml', delete=False) as f:
        f.write(xml)
    try:
        t0 = time.monotonic()
        hypervisor.virsh(lab.holder(host), 'create', f.name)
    finally:
        os.unlink(f.name)
    while guest_get(lab, host, ip, '/cgi-bin/peek', 1) is None:
        if time.monotonic() - t0 > timeout:
            raise TimeoutError('%s did not answer in %ds' % (name, timeout))
        time.sleep(0.5)
    return name, time.monotonic() - t0


_PROBE = '''
import sys, time, urllib.request
end = time.time() + float(sys.argv[2])
while time.time() < end:
    t = time.time()
    try:
        body = urllib.request.urlopen('http://%s/cgi-bin/count' % sys.argv[1],
                                      timeout=0.5).read().decode()
        print('%.3f %s' % (t, body.split()[1]), flush=True)
    except Exception:
        pass
    time.sleep(0.05)
'''


def probe(lab, observer, ip, seconds):
    """Start polling the guest's counter every 50 ms from ``observer``'s
    namespace; returns the Popen (stdout: "time counter" lines)."""
    ns = lab.plan['hosts'][observer]['ns']
    return subprocess.Popen(['ip', 'netns', 'exec', ns, sys.executable,
                             '-c', _PROBE, ip, str(seconds)],
                            stdout=subprocess.PIPE, text=True)


def replies(proc):
    out = proc.communicate()[0]
    return [(float(t), int(c)) for t, c in
            (line.split() for line in out.splitlines() if line)]


def max_gap(points, end=None):
    """Longest time without an answer: between two consecutive answers,
    or from the last answer to ``end`` (the probe's end; a guest that
    died after the move answers no more). Returns (gap, from time)."""
    pairs = list(zip(points, points[1:]))
    gaps = [(b[0] - a[0], a[0]) for a, b in pairs]
    if end is not None and points:
        gaps.append((end - points[-1][0], points[-1][0]))
    return max(gaps, default=(0.0, None))


def probed(lab, observer, ip, action, lead=3, settle=8):
    """Run ``action()`` while ``observer`` polls the guest at ``ip``.

    Returns ``(action's result, seconds it took, points, longest gap,
    probe end time)``; the gap counts the silence after the last answer
    too (see :func:`max_gap`).
    """
    proc = probe(lab, observer, ip, 3600)
    time.sleep(lead)
    t0 = time.monotonic()
    result = action()
    took = time.monotonic() - t0
    time.sleep(settle)
    end = time.time()
    proc.terminate()
    points = replies(proc)
    return result, took, points, max_gap(points, end)[0], end


def migrate(lab, name, src, dst, timeout=300):
    """``virsh migrate --live --p2p`` from src to dst over the underlay;
    returns (seconds, downtime ms from the destination's job info)."""
    dip = lab.plan['hosts'][dst]['ip']
    t0 = time.monotonic()
    hypervisor.virsh(lab.holder(src), 'migrate', '--live', '--p2p', name,
                     'qemu+tcp://%s/system' % dip, '--migrateuri',
                     'tcp://%s' % dip, timeout=timeout)
    took = time.monotonic() - t0
    info = hypervisor.virsh(lab.holder(dst), 'domjobinfo', '--completed',
                            name, check=False)
    downtime = None
    for line in info.splitlines():
        if line.startswith('Total downtime:'):
            downtime = int(line.split()[2])
    return took, downtime
