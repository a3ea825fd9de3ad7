"""Reference for the replica benchmark: plain NFQUEUE pass-through, no
buffering. Binds a queue and accepts every packet in order, exactly as the
agent's data plane does in pass mode, without the durable buffer.

    python nfq_passthrough.py QUEUE_NUM MAX_LEN
"""

import sys

from netfilterqueue import NetfilterQueue


def main():
    if len(sys.argv) != 3:
        sys.exit('usage: nfq_passthrough.py QUEUE_NUM MAX_LEN')
    q = NetfilterQueue()
    q.bind(int(sys.argv[1]), lambda pkt: pkt.accept(),
           max_len=int(sys.argv[2]), sock_len=64 << 20)
    print('ready', flush=True)
    try:
        q.run()
    finally:
        q.unbind()


if __name__ == '__main__':
    main()
