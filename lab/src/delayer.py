"""delayer DELAY_MS JITTER_MS REORDER: takes the datagrams iptables queues
(NFQUEUE 0 of this namespace), holds each for a normally distributed delay
(mean DELAY_MS, deviation JITTER_MS, never negative; a REORDER share skips
the delay) and hands it back (NF_ACCEPT). Plain netlink, no library."""
import heapq
import random
import select
import socket
import struct
import sys
import time

delay, jitter, reorder = float(sys.argv[1]) / 1e3, float(sys.argv[2]) / 1e3, float(sys.argv[3])
NETLINK_NETFILTER, SUBSYS_QUEUE = 12, 3
MSG_PACKET, MSG_VERDICT, MSG_CONFIG = 0, 1, 2
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
s.bind((0, 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)


def attr(kind, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, kind) + payload + b"\0" * ((4 - n % 4) % 4)


def send(msg, payload, queue=0, flags=1):
    body = struct.pack("!BBH", socket.AF_UNSPEC, 0, queue) + payload
    s.send(struct.pack("=IHHII", 16 + len(body), (SUBSYS_QUEUE << 8) | msg, flags, 0, 0) + body)


send(MSG_CONFIG, attr(1, struct.pack("!BBH", 1, 0, 0)))  # NFQNL_CFG_CMD_BIND
send(MSG_CONFIG, attr(2, struct.pack("!IB", 0, 1)))  # NFQA_CFG_PARAMS: metadata only
send(MSG_CONFIG, attr(3, struct.pack("!I", 8192)))  # NFQA_CFG_QUEUE_MAXLEN
print("delayer: bound to queue 0", flush=True)
held = []
n = 0
while True:
    now = time.monotonic()
    while held and held[0][0] <= now:
        _, pid = heapq.heappop(held)
        send(MSG_VERDICT, attr(2, struct.pack("!II", 1, pid)))  # NFQA_VERDICT_HDR: NF_ACCEPT
    timeout = max(0.0, held[0][0] - now) if held else 1.0
    if not select.select([s], [], [], timeout)[0]:
        continue
    data = s.recv(1 << 16)
    off = 0
    while off + 16 <= len(data):
        ln, typ = struct.unpack_from("=IH", data, off)
        if ln < 16:
            break
        if typ == 2:  # NLMSG_ERROR: an ack or an error of ours
            err = struct.unpack_from("=i", data, off + 16)[0]
            if err != 0:
                print(f"delayer: netlink error {err}", flush=True)
        elif typ == (SUBSYS_QUEUE << 8) | MSG_PACKET:
            a = off + 20
            while a + 4 <= off + ln:
                alen, akind = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                if akind & 0x7FFF == 1:  # NFQA_PACKET_HDR
                    pid = struct.unpack_from("!I", data, a + 4)[0]
                    d = 0.0 if random.random() < reorder else max(0.0, random.gauss(delay, jitter))
                    heapq.heappush(held, (time.monotonic() + d, pid))
                    n += 1
                    if n in (1, 1000, 100000):
                        print(f"delayer: {n} datagrams", flush=True)
                a += (alen + 3) & ~3
        off += (ln + 3) & ~3
