#!/usr/bin/env python3
"""An 802.1Q access switch for the netns tests, in user space.

    vlan_switch.py SECONDS TRUNK ACCESS:VID [ACCESS:VID ...]

Runs in the switch's network namespace for at most SECONDS. Frames received on an access
interface leave the trunk tagged with its VLAN id (VID 0: untagged); frames received on the
trunk leave the access interface of their VLAN untagged (untagged ones: the VID 0 access
interface); frames of other VLANs are dropped. What a hardware access switch does, for kernels
without 802.1Q support (CONFIG_VLAN_8021Q unset: no `ip link add ... type vlan`).

The kernel takes the tag of a received frame out of the frame into the skb's metadata before
packet sockets see it (skb_vlan_untag), so the trunk socket reads it from PACKET_AUXDATA.
"""

import select
import socket
import struct
import sys
import time

ETH_P_ALL = 3
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
TPID_8021Q = 0x8100


def tags_of(data, anc):
    """(vid or None, frame without its tag) of a frame read from the trunk."""
    for level, kind, aux in anc:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(aux) >= 20:
            status, _, _, _, _, tci, tpid = struct.unpack("=IIIHHHH", aux[:20])
            if status & TP_STATUS_VLAN_VALID:
                if status & TP_STATUS_VLAN_TPID_VALID and tpid != TPID_8021Q:
                    return None, data  # not a C-tag: no access port takes it
                return tci & 0xFFF, data
    if struct.unpack("!H", data[12:14])[0] == TPID_8021Q:
        return struct.unpack("!H", data[14:16])[0] & 0xFFF, data[:12] + data[16:]
    return 0, data


def main():
    secs = float(sys.argv[1])
    trunk = sys.argv[2]
    access = {}
    for a in sys.argv[3:]:
        name, vid = a.rsplit(":", 1)
        access[name] = int(vid)
    by_vid = {v: n for n, v in access.items()}
    socks = {}
    for name in [trunk, *access]:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        if name == trunk:
            s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        socks[name] = s
    names = {s.fileno(): n for n, s in socks.items()}
    print("ready", flush=True)
    end = time.monotonic() + secs
    while time.monotonic() < end:
        ready, _, _ = select.select(list(socks.values()), [], [], 0.2)
        for s in ready:
            name = names[s.fileno()]
            data, anc, _, addr = s.recvmsg(65536, socket.CMSG_SPACE(64))
            if addr[2] == PACKET_OUTGOING:
                continue
            if name == trunk:
                vid, frame = tags_of(data, anc)
                out = by_vid.get(vid)
                if out is not None:
                    socks[out].send(frame)
            else:
                vid = access[name]
                if vid:
                    data = data[:12] + struct.pack("!HH", TPID_8021Q, vid) + data[12:]
                socks[trunk].send(data)


if __name__ == "__main__":
    main()
