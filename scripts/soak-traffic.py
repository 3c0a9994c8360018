#!/usr/bin/env python3
"""Traffic and control-socket clients of scripts/soak.sh (bounded: every mode stops at its
deadline). Plain sockets, no dependency.

  soak-traffic.py server SECONDS            outside host: UDP echo :7007, TCP echo :7008
  soak-traffic.py client SECONDS SERVER SRC...   inside hosts: mixed traffic with NAT churn
  soak-traffic.py control SECONDS SOCKET    a control-socket client: valid, invalid and
                                            abandoned requests in a loop
  soak-traffic.py burst SECONDS SOCKET N    N such clients at once (the warm-up's burst)

Each mode prints one JSON line of counts when it ends.

The client, every second: 24 new UDP flows (new sockets, so new source ports: new NAT
sessions) from the inside addresses in turn, 4 datagrams each (32, 200, 1000, 1400 bytes) to
the echo server; 3 TCP connections (4 KiB echoed, then closed: FIN, transitory timeout);
datagrams to a closed port (the server's kernel answers port unreachable, translated back),
to an ACL-denied network and with TTL 1 (time exceeded from the router); and all the time a
steady UDP stream of about 1500 datagrams per second on one flow.
"""
import json
import os
import select
import socket
import sys
import threading
import time

UDP_ECHO, TCP_ECHO, CLOSED = 7007, 7008, 7009
DENIED = "203.0.113.5"


def server(secs):
    end = time.time() + secs
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", UDP_ECHO))
    t = socket.socket()
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("0.0.0.0", TCP_ECHO))
    t.listen(64)
    n = {"udp_echoed": 0, "tcp_conns": 0}

    def echo(c):
        c.settimeout(3)
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                c.sendall(b)
        except OSError:
            pass
        finally:
            c.close()

    while time.time() < end:
        r, _, _ = select.select([u, t], [], [], 0.2)
        if u in r:
            for _ in range(256):
                try:
                    b, a = u.recvfrom(4096, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                u.sendto(b, a)
                n["udp_echoed"] += 1
        if t in r:
            c, _ = t.accept()
            n["tcp_conns"] += 1
            threading.Thread(target=echo, args=(c,), daemon=True).start()
    print(json.dumps(n), flush=True)


def client(secs, srv, srcs):
    end = time.time() + secs
    n = dict(udp_flows=0, udp_sent=0, udp_back=0, tcp_ok=0, tcp_failed=0, stream_sent=0,
             stream_back=0, closed_port=0, denied=0, ttl1=0)
    stream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stream.bind((srcs[0], 0))
    stream.setblocking(False)
    live = []  # (deadline, socket) of the last flows, closed after 2 s
    sizes = (32, 200, 1000, 1400)
    sec = 0
    while time.time() < end:
        t0 = time.time()
        # New flows (NAT churn).
        for i in range(24):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((srcs[(sec * 24 + i) % len(srcs)], 0))
            s.setblocking(False)
            for z in sizes:
                try:
                    s.sendto(bytes(z), (srv, UDP_ECHO))
                    n["udp_sent"] += 1
                except OSError:
                    pass
            live.append((t0 + 2, s))
            n["udp_flows"] += 1
        # A few TCP connections, each echoing 4 KiB.
        for i in range(3):
            try:
                c = socket.create_connection((srv, TCP_ECHO), timeout=1,
                                             source_address=(srcs[i % len(srcs)], 0))
                c.settimeout(1)
                c.sendall(bytes(4096))
                got = 0
                while got < 4096:
                    b = c.recv(65536)
                    if not b:
                        break
                    got += len(b)
                c.close()
                n["tcp_ok" if got == 4096 else "tcp_failed"] += 1
            except OSError:
                n["tcp_failed"] += 1
        # Datagrams that end as drops or ICMP errors.
        misc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        misc.bind((srcs[-1], 0))
        for _ in range(5):
            misc.sendto(b"closed", (srv, CLOSED))
            n["closed_port"] += 1
            misc.sendto(b"denied", (DENIED, 9))
            n["denied"] += 1
        misc.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 1)
        for _ in range(2):
            misc.sendto(b"ttl1", (srv, 9))
            n["ttl1"] += 1
        misc.close()
        # The steady stream for the rest of the second, in batches of 75 every 50 ms.
        while time.time() < min(t0 + 1, end):
            for _ in range(75):
                try:
                    stream.sendto(bytes(100), (srv, UDP_ECHO))
                    n["stream_sent"] += 1
                except OSError:
                    break
            for _ in range(256):
                try:
                    stream.recv(4096)
                    n["stream_back"] += 1
                except OSError:
                    break
            now = time.time()
            while live and live[0][0] <= now:
                _, s = live.pop(0)
                for _ in range(8):
                    try:
                        s.recv(4096)
                        n["udp_back"] += 1
                    except OSError:
                        break
                s.close()
            time.sleep(0.05)
        sec += 1
    for _, s in live:
        s.close()
    print(json.dumps(n), flush=True)


def control(secs, path):
    end = time.time() + secs
    n = dict(requests=0, ok=0, refused=0, busy=0, bad_replies=0, connect_failed=0)
    reqs = [
        {"v": 1, "id": 1, "cmd": "stats", "args": {}},
        {"v": 1, "id": 2, "cmd": "nat.sessions", "args": {"limit": 5}},
        {"v": 1, "id": 3, "cmd": "no.such.command", "args": {}},
        {"v": 1, "id": 4, "cmd": "route.lookup", "args": {"address": "198.51.100.77"}},
    ]
    i = 0
    while time.time() < end:
        i += 1
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(path)
        except OSError:
            n["connect_failed"] += 1
            time.sleep(0.1)
            continue
        if i % 7 == 0:
            s.close()  # connects and leaves without a word
            continue
        f = s.makefile("rwb")
        lines = [json.dumps(r).encode() for r in reqs] + [b"{not json", b"\x00\xff garbage"]
        try:
            for line in lines:
                f.write(line + b"\n")
                f.flush()
                n["requests"] += 1
                reply = f.readline()
                try:
                    r = json.loads(reply)
                except ValueError:
                    n["bad_replies"] += 1
                    break
                if "too many control clients" in str(r.get("error")):
                    n["busy"] += 1  # max_clients reached: the server said so and closed
                    break
                n["ok" if r.get("ok") else "refused"] += 1
        except OSError:
            n["bad_replies"] += 1
        try:
            f.close()
        except OSError:
            pass
        s.close()
        time.sleep(0.02)
    print(json.dumps(n), flush=True)


def burst_client(secs, path, i):
    """One client of the warm-up burst: an ACL rule added and deleted (an ACL build: DPDK's
    rte_acl takes an 8 MiB scratch pool from malloc, which glibc then keeps in the arena of
    the server thread that built it), then the control loop. All clients connect at once, so
    the server's threads (and their malloc arenas) are as many as the load will ever have."""
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(path)
        f = s.makefile("rwb")
        add = {"v": 1, "id": 1, "cmd": "acl.add",
               "args": {"dst": f"203.0.113.{200 + i}/32", "proto": "udp", "action": "deny"}}
        f.write(json.dumps(add).encode() + b"\n")
        f.flush()
        r = json.loads(f.readline())
        if r.get("ok"):
            d = {"v": 1, "id": 2, "cmd": "acl.del", "args": {"id": r["data"]["id"]}}
            f.write(json.dumps(d).encode() + b"\n")
            f.flush()
            f.readline()
        time.sleep(1)  # every burst client connected at the same time
        f.close()
        s.close()
    except (OSError, ValueError, KeyError):
        pass
    control(secs, path)


if __name__ == "__main__":
    mode, secs = sys.argv[1], float(sys.argv[2])
    if mode == "server":
        server(secs)
    elif mode == "client":
        client(secs, sys.argv[3], sys.argv[4:])
    elif mode == "control":
        control(secs, sys.argv[3])
    elif mode == "burst":
        ts = [threading.Thread(target=burst_client, args=(secs, sys.argv[3], i))
              for i in range(int(sys.argv[4]))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    else:
        sys.exit(f"unknown mode {mode}")
    sys.stdout.flush()
    os._exit(0)
