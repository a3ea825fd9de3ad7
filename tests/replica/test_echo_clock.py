"""The echo client's reply times are the kernel's receive times, so a
reader thread that gets the CPU (or the GIL) late does not stretch a
measured gap (the two-cloud benchmark's downtime)."""

import os
import socket
import struct
import sys
import time

import pytest

from nova_netaware.replica.lab import echo

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason='a raw ICMP socket needs root')


def test_kernel_time_reads_an_scm_timestampns_message():
    data = struct.pack('@qq', 1700000000, 250000000)
    got = echo.kernel_time([(socket.SOL_SOCKET, echo.SO_TIMESTAMPNS,
                             data)])
    assert got == pytest.approx(1700000000.25)
    assert echo.kernel_time([]) is None
    assert echo.kernel_time([(socket.SOL_SOCKET, echo.SO_TIMESTAMPNS,
                              b'short')]) is None


def test_a_reply_read_late_keeps_its_arrival_time():
    """Echoes to loopback, each followed by 30 ms in which this thread
    keeps the GIL (a long switch interval), so the reader reads most
    replies late: the recorded round trips stay those of loopback."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW,
                         socket.IPPROTO_ICMP)
    stream = echo.EchoStream(sock, '127.0.0.1')
    old = sys.getswitchinterval()
    try:
        sys.setswitchinterval(5.0)
        for _ in range(20):
            stream.send()
            end = time.monotonic() + 0.03
            while time.monotonic() < end:    # no sleep, no I/O: the GIL
                pass
        sys.setswitchinterval(old)
        assert stream.wait_replies(20, 5) == 20
    finally:
        sys.setswitchinterval(old)
        stream.close()
    lags, rtts = sorted(stream.read_lag), sorted(stream.rtts())
    assert lags[10] > 0.01, lags
    assert rtts[10] < 0.005, rtts
