//! A corpus of malformed and hostile frames for the hostile-traffic lab: each [`Kind`] is one
//! way a frame can be wrong or abusive (runts, bad IPv4 headers, truncated L4 headers, tiny and
//! overlapping fragments, expiring TTLs, martian addresses, broadcast storms, ARP floods and
//! spoofing, SYN floods, ICMP error floods, ICMP errors quoting garbage, random bytes, oversized
//! frames, ...), built byte by byte for a two-port router topology ([`Net`]): an inside port
//! (`lan`) and an outside port (`wan`).
//!
//! The corpus says what each frame is, not what a forwarder must do with it: the tests that
//! replay it hold their own expectations. Everything is deterministic (the random kinds use a
//! fixed-seed xorshift generator), so a corpus is the same bytes on every run.

use std::net::Ipv4Addr;

/// Which port of the topology a kind's frames arrive on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The inside port (hosts behind NAT).
    Lan,
    /// The outside port (the Internet side).
    Wan,
}

/// The topology the frames are built for (addresses as the router under test sees them).
#[derive(Debug, Clone)]
pub struct Net {
    /// MAC addresses of the router's inside and outside ports.
    pub lan_mac: [u8; 6],
    pub wan_mac: [u8; 6],
    /// The router's inside address and its prefix length.
    pub lan_ip: Ipv4Addr,
    pub lan_len: u8,
    /// The router's outside address.
    pub wan_ip: Ipv4Addr,
    /// An inside host (its MAC and address) that sends the legitimate traffic.
    pub host_mac: [u8; 6],
    pub host_ip: Ipv4Addr,
    /// The outside gateway's MAC (frames arriving on `wan` come from it).
    pub gw_mac: [u8; 6],
    /// The outside gateway's address (a neighbour of the router).
    pub gw_ip: Ipv4Addr,
    /// A remote server beyond the gateway.
    pub remote_ip: Ipv4Addr,
    /// A NAT pool address (outside frames aimed at translated traffic target it).
    pub pool_ip: Ipv4Addr,
    /// A destination network that an ACL denies.
    pub denied_ip: Ipv4Addr,
}

impl Default for Net {
    /// The full-chain lab of `configs/lab-full.toml` with net_pcap's port MACs: lan
    /// 10.0.0.1/24 (02:70:63:61:70:00), wan 198.51.100.1/24 (02:70:63:61:70:01), host
    /// 10.0.0.2, gateway 198.51.100.254, remote 198.19.0.1, pool 198.51.100.16, denied
    /// 203.0.113.9.
    fn default() -> Self {
        Net {
            lan_mac: [0x02, 0x70, 0x63, 0x61, 0x70, 0x00],
            wan_mac: [0x02, 0x70, 0x63, 0x61, 0x70, 0x01],
            lan_ip: Ipv4Addr::new(10, 0, 0, 1),
            lan_len: 24,
            wan_ip: Ipv4Addr::new(198, 51, 100, 1),
            host_mac: [0x02, 0, 0, 0, 0, 0x10],
            host_ip: Ipv4Addr::new(10, 0, 0, 2),
            gw_mac: [0x02, 0, 0, 0, 0x01, 0xfe],
            gw_ip: Ipv4Addr::new(198, 51, 100, 254),
            remote_ip: Ipv4Addr::new(198, 19, 0, 1),
            pool_ip: Ipv4Addr::new(198, 51, 100, 16),
            denied_ip: Ipv4Addr::new(203, 0, 113, 9),
        }
    }
}

/// One kind of hostile frame: a short name (stable, used as a key by the tests), one line on
/// what is wrong with it, the port it arrives on and its frames.
#[derive(Debug, Clone)]
pub struct Kind {
    pub name: &'static str,
    pub what: &'static str,
    pub side: Side,
    pub frames: Vec<Vec<u8>>,
}

/// IP protocol numbers used here.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const GRE: u8 = 47;
}

const ETH_IPV4: u16 = 0x0800;
const ETH_ARP: u16 = 0x0806;
const BROADCAST: [u8; 6] = [0xff; 6];

/// TCP flags.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// RFC 1071 Internet checksum of `data` (odd lengths padded with a zero byte), starting from
/// the partial sum `init`.
pub fn checksum(init: u32, data: &[u8]) -> u16 {
    let mut sum = init;
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Partial sum of the IPv4 pseudo-header (RFC 793/768) for `len` bytes of protocol `proto`.
fn pseudo(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    let (s, d) = (src.octets(), dst.octets());
    u32::from(u16::from_be_bytes([s[0], s[1]]))
        + u32::from(u16::from_be_bytes([s[2], s[3]]))
        + u32::from(u16::from_be_bytes([d[0], d[1]]))
        + u32::from(u16::from_be_bytes([d[2], d[3]]))
        + u32::from(proto)
        + len as u32
}

/// An Ethernet header.
pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// The fields of an IPv4 header [`ipv4`] writes; `Default` is a plain 20-byte header, TTL 64,
/// DF clear, total length and checksum computed.
#[derive(Debug, Clone, Copy)]
pub struct Ip {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub ttl: u8,
    pub id: u16,
    /// Flags and fragment offset word (MF = 0x2000, DF = 0x4000, offset in 8-byte units).
    pub frag: u16,
    /// Version/IHL byte (0x45 normally).
    pub ver_ihl: u8,
    /// Total length; `None`: header + payload.
    pub total_len: Option<u16>,
    /// Added to the correct header checksum (0: correct).
    pub csum_delta: u16,
    /// Options bytes after the 20-byte header (IHL must say so).
    pub options: &'static [u8],
}

impl Default for Ip {
    fn default() -> Self {
        Ip {
            src: Ipv4Addr::new(10, 0, 0, 2),
            dst: Ipv4Addr::new(198, 19, 0, 1),
            proto: proto::UDP,
            ttl: 64,
            id: 1,
            frag: 0,
            ver_ihl: 0x45,
            total_len: None,
            csum_delta: 0,
            options: &[],
        }
    }
}

/// An IPv4 header (20 bytes plus `ip.options`) followed by `payload`.
pub fn ipv4(ip: &Ip, payload: &[u8]) -> Vec<u8> {
    let hlen = 20 + ip.options.len();
    let total = ip.total_len.unwrap_or((hlen + payload.len()) as u16);
    let mut h = Vec::with_capacity(hlen + payload.len());
    h.push(ip.ver_ihl);
    h.push(0);
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&ip.id.to_be_bytes());
    h.extend_from_slice(&ip.frag.to_be_bytes());
    h.push(ip.ttl);
    h.push(ip.proto);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&ip.src.octets());
    h.extend_from_slice(&ip.dst.octets());
    h.extend_from_slice(ip.options);
    let c = checksum(0, &h).wrapping_add(ip.csum_delta);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// A UDP header and payload with a correct checksum (for `src` -> `dst`).
pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let len = 8 + data.len();
    let mut u = Vec::with_capacity(len);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    let mut c = checksum(pseudo(src, dst, proto::UDP, len), &u);
    if c == 0 {
        c = 0xffff;
    }
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// A TCP header (data offset `doff` words, no options written) and payload, checksum correct.
pub fn tcp(
    (src, dst): (Ipv4Addr, Ipv4Addr),
    sport: u16,
    dport: u16,
    flags: u8,
    doff: u8,
    data: &[u8],
) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + data.len());
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&0x1000_0000u32.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.push(doff << 4);
    t.push(flags);
    t.extend_from_slice(&65535u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(data);
    let c = checksum(pseudo(src, dst, proto::TCP, t.len()), &t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

/// An ICMP message (type, code, the 4 bytes after the checksum, body), checksum correct.
pub fn icmp(ty: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(body);
    let c = checksum(0, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An ARP packet for IPv4 over Ethernet in an Ethernet frame (padded to 60 bytes).
pub fn arp(
    eth_dst: [u8; 6],
    op: u16,
    (sha, spa): ([u8; 6], Ipv4Addr),
    (tha, tpa): ([u8; 6], Ipv4Addr),
) -> Vec<u8> {
    let mut f = eth(eth_dst, sha, ETH_ARP);
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa.octets());
    f.resize(60, 0);
    f
}

/// Pads a frame to the 60-byte Ethernet minimum (without FCS).
fn pad(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// A deterministic xorshift64 stream.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

impl Net {
    /// An inside host's frame to the router: Ethernet to the lan port, IPv4 `ip`, `l4`.
    pub fn from_lan(&self, ip: &Ip, l4: &[u8]) -> Vec<u8> {
        let mut f = eth(self.lan_mac, self.host_mac, ETH_IPV4);
        f.extend_from_slice(&ipv4(ip, l4));
        pad(f)
    }

    /// An outside frame to the router: Ethernet from the gateway to the wan port.
    pub fn from_wan(&self, ip: &Ip, l4: &[u8]) -> Vec<u8> {
        let mut f = eth(self.wan_mac, self.gw_mac, ETH_IPV4);
        f.extend_from_slice(&ipv4(ip, l4));
        pad(f)
    }

    /// The inside host's IPv4 header to the remote server, protocol `proto`.
    pub fn out_ip(&self, proto: u8) -> Ip {
        Ip {
            src: self.host_ip,
            dst: self.remote_ip,
            proto,
            ..Ip::default()
        }
    }

    /// A valid UDP datagram from the inside host (source port `sport`) to the remote.
    pub fn legit_udp(&self, sport: u16, len: usize) -> Vec<u8> {
        let data = vec![0x5a; len];
        self.from_lan(
            &self.out_ip(proto::UDP),
            &udp(self.host_ip, self.remote_ip, sport, 9, &data),
        )
    }

    /// A valid TCP segment (ACK) from the inside host (source port `sport`) to the remote.
    pub fn legit_tcp(&self, sport: u16) -> Vec<u8> {
        self.from_lan(
            &self.out_ip(proto::TCP),
            &tcp(
                (self.host_ip, self.remote_ip),
                sport,
                80,
                tcp_flags::ACK,
                5,
                b"hello",
            ),
        )
    }

    /// The host's legitimate traffic: `n` frames, UDP (64 and 570 bytes) and TCP, from
    /// `flows` source ports (ports 20000..).
    pub fn legit(&self, n: usize, flows: u16) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let sport = 20000 + (i as u16 % flows.max(1));
                match i % 3 {
                    0 => self.legit_udp(sport, 18),
                    1 => self.legit_udp(sport, 528),
                    _ => self.legit_tcp(sport),
                }
            })
            .collect()
    }
}

/// An address inside the lan port's subnet (`host` is the host part).
fn lan_host(net: &Net, host: u32) -> Ipv4Addr {
    let mask = u32::MAX << (32 - u32::from(net.lan_len));
    Ipv4Addr::from((u32::from(net.lan_ip) & mask) | (host & !mask))
}

/// The lan subnet's directed broadcast address.
fn lan_broadcast(net: &Net) -> Ipv4Addr {
    lan_host(net, u32::MAX)
}

/// The corpus: at least 30 kinds, `n` frames each (kinds that are one exchange, like a pair
/// of overlapping fragments, repeat it `n` times; floods use `n` distinct frames).
pub fn corpus(net: &Net, n: usize) -> Vec<Kind> {
    let mut k = Vec::new();
    let mut rng = Rng::new(0x5eed_1234_abcd);
    let rep = |f: Vec<u8>| vec![f; n];
    let (h, r) = (net.host_ip, net.remote_ip);
    let udp_l4 = udp(h, r, 4000, 9, &[0x11; 18]);
    let out_udp = net.out_ip(proto::UDP);
    let mk = |name, what, side, frames| Kind {
        name,
        what,
        side,
        frames,
    };

    // --- Ethernet level.
    k.push(mk(
        "runt_10",
        "10-byte frame, shorter than an Ethernet header",
        Side::Lan,
        rep(net.legit_udp(1, 18)[..10].to_vec()),
    ));
    k.push(mk("runt_1", "1-byte frame", Side::Lan, rep(vec![0xff])));
    k.push(mk(
        "eth_header_only",
        "14-byte frame: an Ethernet header with EtherType IPv4 and nothing after it",
        Side::Lan,
        rep(eth(net.lan_mac, net.host_mac, ETH_IPV4)),
    ));
    k.push(mk(
        "ipv6_ethertype",
        "EtherType IPv6 on an IPv4 packet (its version nibble says 4)",
        Side::Lan,
        rep({
            let mut f = net.legit_udp(1, 18);
            f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
            f
        }),
    ));
    k.push(mk(
        "vlan_tagged",
        "802.1Q-tagged IPv4 frame (no stage accepts tags)",
        Side::Lan,
        rep({
            let f = net.legit_udp(1, 18);
            let mut t = f[..12].to_vec();
            t.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
            t.extend_from_slice(&f[12..]);
            t
        }),
    ));
    k.push(mk(
        "oversized_1600",
        "1600-byte frame (IPv4 total length 1586, above a 1500-byte MTU), DF clear",
        Side::Lan,
        rep(net.legit_udp(1, 1600 - 14 - 20 - 8)),
    ));
    k.push(mk(
        "oversized_9000",
        "9000-byte jumbo frame (more than one mbuf's data room)",
        Side::Lan,
        rep(net.legit_udp(1, 9000 - 14 - 20 - 8)),
    ));

    // --- IPv4 header (RFC 1812 5.2.2).
    k.push(mk(
        "ip_version_6",
        "EtherType IPv4, version field 6",
        Side::Lan,
        rep(net.from_lan(
            &Ip {
                ver_ihl: 0x65,
                ..out_udp
            },
            &udp_l4,
        )),
    ));
    k.push(mk(
        "ip_ihl_3",
        "IHL 3 (12 bytes), below the minimum 5",
        Side::Lan,
        rep(net.from_lan(
            &Ip {
                ver_ihl: 0x43,
                ..out_udp
            },
            &udp_l4,
        )),
    ));
    k.push(mk(
        "ip_ihl_15_short",
        "IHL 15 (60 bytes) but total length 48 (shorter than the header)",
        Side::Lan,
        rep(net.from_lan(
            &Ip {
                ver_ihl: 0x4f,
                total_len: Some(48),
                ..out_udp
            },
            &udp_l4,
        )),
    ));
    k.push(mk(
        "ip_total_len_19",
        "total length 19, below the 20-byte header",
        Side::Lan,
        rep(net.from_lan(
            &Ip {
                total_len: Some(19),
                ..out_udp
            },
            &udp_l4,
        )),
    ));
    k.push(mk(
        "ip_total_len_1000",
        "total length 1000 in a 60-byte frame",
        Side::Lan,
        rep(net.from_lan(
            &Ip {
                total_len: Some(1000),
                ..out_udp
            },
            &udp_l4,
        )),
    ));
    k.push(mk(
        "ip_bad_checksum",
        "IPv4 header checksum off by one",
        Side::Lan,
        rep(net.from_lan(
            &Ip {
                csum_delta: 1,
                ..out_udp
            },
            &udp_l4,
        )),
    ));
    k.push(mk(
        "ip_options",
        "IHL 6 with a 4-byte options field (NOP NOP NOP EOL)",
        Side::Lan,
        rep(net.from_lan(
            &Ip {
                ver_ihl: 0x46,
                options: &[1, 1, 1, 0],
                ..out_udp
            },
            &udp_l4,
        )),
    ));
    k.push(mk(
        "ip_proto_gre",
        "IP protocol 47 (GRE) through NAT",
        Side::Lan,
        rep(net.from_lan(&net.out_ip(proto::GRE), &[0u8; 8])),
    ));

    // --- Truncated or inconsistent L4 headers.
    k.push(mk(
        "udp_truncated",
        "UDP datagram of 4 bytes (IPv4 total length 24): no room for the UDP header",
        Side::Lan,
        rep(net.from_lan(&out_udp, &udp_l4[..4])),
    ));
    k.push(mk(
        "tcp_truncated",
        "TCP segment of 8 bytes: no room for the 20-byte header",
        Side::Lan,
        rep(net.from_lan(
            &net.out_ip(proto::TCP),
            &tcp((h, r), 4000, 80, tcp_flags::SYN, 5, &[])[..8],
        )),
    ));
    k.push(mk(
        "icmp_truncated",
        "ICMP message of 3 bytes",
        Side::Lan,
        rep(net.from_lan(&net.out_ip(proto::ICMP), &[8, 0, 0])),
    ));
    k.push(mk(
        "udp_zero_length",
        "UDP length field 0 (below its own 8-byte header), checksum 0",
        Side::Lan,
        rep({
            let mut u = udp_l4.clone();
            u[4..8].fill(0);
            net.from_lan(&out_udp, &u)
        }),
    ));
    k.push(mk(
        "udp_length_beyond_ip",
        "UDP length 1000 in a 26-byte IP payload",
        Side::Lan,
        rep({
            let mut u = udp_l4.clone();
            u[4..6].copy_from_slice(&1000u16.to_be_bytes());
            net.from_lan(&out_udp, &u)
        }),
    ));
    k.push(mk(
        "tcp_data_offset_2",
        "TCP data offset 2 (8 bytes), below the minimum 5",
        Side::Lan,
        rep(net.from_lan(
            &net.out_ip(proto::TCP),
            &tcp((h, r), 4001, 80, tcp_flags::ACK, 2, b"x"),
        )),
    ));
    k.push(mk(
        "tcp_data_offset_15",
        "TCP data offset 15 (60 bytes) in a 21-byte segment",
        Side::Lan,
        rep(net.from_lan(
            &net.out_ip(proto::TCP),
            &tcp((h, r), 4002, 80, tcp_flags::ACK, 15, b"x"),
        )),
    ));
    k.push(mk(
        "tcp_syn_fin",
        "TCP with SYN, FIN and RST all set",
        Side::Lan,
        rep(net.from_lan(
            &net.out_ip(proto::TCP),
            &tcp(
                (h, r),
                4003,
                80,
                tcp_flags::SYN | tcp_flags::FIN | tcp_flags::RST,
                5,
                &[],
            ),
        )),
    ));

    // --- Fragments.
    let frag = |id: u16, off: u16, mf: bool, proto: u8, body: &[u8]| {
        net.from_lan(
            &Ip {
                proto,
                id,
                frag: off | if mf { 0x2000 } else { 0 },
                ..net.out_ip(proto)
            },
            body,
        )
    };
    k.push(mk(
        "frag_tiny_first",
        "first fragment (MF) of a TCP datagram carrying 8 bytes: too short for the TCP header (RFC 1858)",
        Side::Lan,
        (0..n)
            .map(|i| {
                frag(
                    100 + i as u16,
                    0,
                    true,
                    proto::TCP,
                    &tcp((h, r), 4004, 80, tcp_flags::SYN, 5, &[])[..8],
                )
            })
            .collect(),
    ));
    k.push(mk(
        "frag_orphan",
        "non-first fragment (offset 64 bytes) of a datagram whose first fragment never came",
        Side::Lan,
        (0..n)
            .map(|i| frag(1000 + i as u16, 8, false, proto::UDP, &[0x22; 16]))
            .collect(),
    ));
    k.push(mk(
        "frag_overlap",
        "UDP datagram in two fragments, the second overlapping the first (offset 8 bytes, inside the first's 24)",
        Side::Lan,
        (0..n)
            .flat_map(|i| {
                let id = 2000 + i as u16;
                let whole = udp(h, r, 4005, 9, &[0x33; 40]);
                [
                    frag(id, 0, true, proto::UDP, &whole[..24]),
                    frag(id, 1, false, proto::UDP, &whole[8..]),
                ]
            })
            .collect(),
    ));
    k.push(mk(
        "frag_tcp_offset_1",
        "TCP first fragment then a fragment at offset 8 bytes that would overwrite the TCP flags (RFC 3128)",
        Side::Lan,
        (0..n)
            .flat_map(|i| {
                let id = 3000 + i as u16;
                let seg = tcp((h, r), 4006, 80, tcp_flags::ACK, 5, &[0x44; 16]);
                [
                    frag(id, 0, true, proto::TCP, &seg[..24]),
                    frag(id, 1, false, proto::TCP, &seg[8..]),
                ]
            })
            .collect(),
    ));

    // --- TTL.
    k.push(mk(
        "ttl_0",
        "TTL 0 on arrival",
        Side::Lan,
        rep(net.from_lan(&Ip { ttl: 0, ..out_udp }, &udp_l4)),
    ));
    k.push(mk(
        "ttl_1",
        "TTL 1: expires at the router",
        Side::Lan,
        rep(net.from_lan(&Ip { ttl: 1, ..out_udp }, &udp_l4)),
    ));

    // --- Martian sources and destinations.
    let martian_src: [(&'static str, &'static str, [u8; 4]); 5] = [
        ("src_zero_net", "source 0.1.2.3 (0/8)", [0, 1, 2, 3]),
        ("src_loopback", "source 127.0.0.1", [127, 0, 0, 1]),
        ("src_multicast", "source 224.0.0.5 (224/4)", [224, 0, 0, 5]),
        ("src_class_e", "source 240.0.0.1 (class E)", [240, 0, 0, 1]),
        (
            "src_broadcast",
            "source 255.255.255.255",
            [255, 255, 255, 255],
        ),
    ];
    for (name, what, a) in martian_src {
        let src = Ipv4Addr::from(a);
        k.push(mk(
            name,
            what,
            Side::Lan,
            rep(net.from_lan(&Ip { src, ..out_udp }, &udp(src, r, 4000, 9, &[0x11; 18]))),
        ));
    }
    let martian_dst: [(&'static str, &'static str, Ipv4Addr); 6] = [
        (
            "dst_zero_net",
            "destination 0.1.2.3 (0/8)",
            Ipv4Addr::new(0, 1, 2, 3),
        ),
        (
            "dst_loopback",
            "destination 127.0.0.1",
            Ipv4Addr::new(127, 0, 0, 1),
        ),
        (
            "dst_multicast",
            "destination 224.0.0.5 in a unicast frame",
            Ipv4Addr::new(224, 0, 0, 5),
        ),
        (
            "dst_class_e",
            "destination 240.0.0.1 (class E)",
            Ipv4Addr::new(240, 0, 0, 1),
        ),
        (
            "dst_broadcast",
            "destination 255.255.255.255 in a unicast frame",
            Ipv4Addr::BROADCAST,
        ),
        (
            "dst_subnet_broadcast",
            "destination the lan's directed broadcast in a unicast frame (smurf)",
            lan_broadcast(net),
        ),
    ];
    for (name, what, dst) in martian_dst {
        k.push(mk(
            name,
            what,
            Side::Lan,
            rep(net.from_lan(
                &Ip {
                    dst,
                    proto: proto::ICMP,
                    ..out_udp
                },
                &icmp(8, 0, [0, 1, 0, 1], &[0x55; 16]),
            )),
        ));
    }
    k.push(mk(
        "land",
        "source = destination = the router's own lan address (LAND)",
        Side::Lan,
        rep(net.from_lan(
            &Ip {
                src: net.lan_ip,
                dst: net.lan_ip,
                proto: proto::TCP,
                ..out_udp
            },
            &tcp((net.lan_ip, net.lan_ip), 80, 80, tcp_flags::SYN, 5, &[]),
        )),
    ));

    // --- Broadcast storms and L2 abuse.
    k.push(mk(
        "broadcast_storm",
        "UDP to the lan broadcast in link-layer broadcast frames, from many sources",
        Side::Lan,
        (0..n)
            .map(|i| {
                let src = lan_host(net, 2 + (i as u32 % 200));
                let dst = lan_broadcast(net);
                let mut f = eth(BROADCAST, net.host_mac, ETH_IPV4);
                f.extend_from_slice(&ipv4(
                    &Ip {
                        src,
                        dst,
                        ..out_udp
                    },
                    &udp(src, dst, 137, 137, &[0x66; 50]),
                ));
                f
            })
            .collect(),
    ));
    k.push(mk(
        "multicast_mac_unicast_ip",
        "unicast IPv4 to the remote in a multicast frame (01:00:5e:00:00:01)",
        Side::Lan,
        rep({
            let mut f = net.legit_udp(4007, 18);
            f[..6].copy_from_slice(&[0x01, 0x00, 0x5e, 0, 0, 1]);
            f
        }),
    ));

    // --- ARP.
    k.push(mk(
        "arp_flood",
        "ARP requests broadcast for many addresses of the lan subnet, not the router's",
        Side::Lan,
        (0..n)
            .map(|i| {
                arp(
                    BROADCAST,
                    1,
                    (net.host_mac, net.host_ip),
                    ([0; 6], lan_host(net, 10 + (i as u32 % 240))),
                )
            })
            .collect(),
    ));
    k.push(mk(
        "arp_spoof_gateway",
        "gratuitous ARP on the lan claiming the outside gateway's address (another port's static neighbour)",
        Side::Lan,
        rep(arp(
            BROADCAST,
            2,
            ([0x02, 0xba, 0xd0, 0, 0, 1], net.gw_ip),
            (BROADCAST, net.gw_ip),
        )),
    ));
    k.push(mk(
        "arp_spoof_router",
        "ARP reply on the lan claiming the router's own lan address",
        Side::Lan,
        rep(arp(
            net.lan_mac,
            2,
            ([0x02, 0xba, 0xd0, 0, 0, 2], net.lan_ip),
            (net.lan_mac, net.lan_ip),
        )),
    ));
    k.push(mk(
        "arp_off_subnet",
        "ARP request for the router from a sender outside the lan subnet",
        Side::Lan,
        rep(arp(
            BROADCAST,
            1,
            ([0x02, 0xba, 0xd0, 0, 0, 3], Ipv4Addr::new(172, 16, 0, 9)),
            ([0; 6], net.lan_ip),
        )),
    ));
    k.push(mk(
        "arp_malformed",
        "ARP with hardware length 7 and an unknown opcode",
        Side::Lan,
        rep({
            let mut f = arp(
                BROADCAST,
                9,
                (net.host_mac, net.host_ip),
                ([0; 6], net.lan_ip),
            );
            f[18] = 7;
            f
        }),
    ));
    k.push(mk(
        "arp_truncated",
        "ARP frame cut after 20 bytes",
        Side::Lan,
        rep(arp(
            BROADCAST,
            1,
            (net.host_mac, net.host_ip),
            ([0; 6], net.lan_ip),
        )[..20]
            .to_vec()),
    ));

    // --- Floods through NAT.
    k.push(mk(
        "syn_flood_nat",
        "TCP SYNs from the inside host to the remote from distinct source ports (one NAT session each)",
        Side::Lan,
        (0..n)
            .map(|i| {
                net.from_lan(
                    &net.out_ip(proto::TCP),
                    &tcp((h, r), 30000 + i as u16, 80, tcp_flags::SYN, 5, &[]),
                )
            })
            .collect(),
    ));
    k.push(mk(
        "syn_flood_inbound",
        "TCP SYNs from the outside to random ports of a pool address (no session)",
        Side::Wan,
        (0..n)
            .map(|i| {
                let dport = 1024 + rng.below(60000) as u16;
                net.from_wan(
                    &Ip {
                        src: r,
                        dst: net.pool_ip,
                        proto: proto::TCP,
                        ..Ip::default()
                    },
                    &tcp(
                        (r, net.pool_ip),
                        40000 + i as u16,
                        dport,
                        tcp_flags::SYN,
                        5,
                        &[],
                    ),
                )
            })
            .collect(),
    ));
    let quoted = ipv4(
        &Ip {
            src: net.pool_ip,
            dst: r,
            ..Ip::default()
        },
        &udp(net.pool_ip, r, 55555, 9, &[0; 8])[..8],
    );
    k.push(mk(
        "icmp_error_flood_inbound",
        "ICMP port unreachables from the outside to a pool address quoting a datagram of no session",
        Side::Wan,
        rep(net.from_wan(
            &Ip {
                src: r,
                dst: net.pool_ip,
                proto: proto::ICMP,
                ..Ip::default()
            },
            &icmp(3, 3, [0; 4], &quoted),
        )),
    ));
    k.push(mk(
        "icmp_error_garbage_inbound",
        "ICMP time exceeded from the outside to a pool address quoting 12 random bytes",
        Side::Wan,
        (0..n)
            .map(|_| {
                net.from_wan(
                    &Ip {
                        src: r,
                        dst: net.pool_ip,
                        proto: proto::ICMP,
                        ..Ip::default()
                    },
                    &icmp(11, 0, [0; 4], &rng.bytes(12)),
                )
            })
            .collect(),
    ));
    k.push(mk(
        "icmp_error_garbage_outbound",
        "ICMP destination unreachable from the inside quoting a header with IHL 2 and garbage",
        Side::Lan,
        rep(net.from_lan(
            &net.out_ip(proto::ICMP),
            &icmp(3, 1, [0; 4], &{
                let mut q = quoted.clone();
                q[0] = 0x42;
                q
            }),
        )),
    ));
    k.push(mk(
        "icmp_redirect",
        "ICMP redirect from an inside host (NAT translates queries and errors only)",
        Side::Lan,
        rep(net.from_lan(
            &net.out_ip(proto::ICMP),
            &icmp(5, 1, net.host_ip.octets(), &quoted),
        )),
    ));
    k.push(mk(
        "icmp_error_about_icmp_error",
        "ICMP error quoting an ICMP error (RFC 1812 4.3.2.7: never answered)",
        Side::Lan,
        rep(net.from_lan(
            &Ip {
                ttl: 1,
                proto: proto::ICMP,
                ..out_udp
            },
            &icmp(3, 3, [0; 4], &{
                let inner = ipv4(
                    &Ip {
                        src: r,
                        dst: h,
                        proto: proto::ICMP,
                        ..Ip::default()
                    },
                    &icmp(3, 3, [0; 4], &[0; 8]),
                );
                inner[..28].to_vec()
            }),
        )),
    ));
    k.push(mk(
        "outside_to_inside_direct",
        "outside packet addressed straight to an inside host (not a pool address)",
        Side::Wan,
        rep(net.from_wan(
            &Ip {
                src: r,
                dst: h,
                ..Ip::default()
            },
            &udp(r, h, 53, 4000, &[0x77; 18]),
        )),
    ));
    k.push(mk(
        "acl_denied",
        "UDP from the inside host to a network the ACL denies",
        Side::Lan,
        rep(net.from_lan(
            &Ip {
                dst: net.denied_ip,
                ..out_udp
            },
            &udp(h, net.denied_ip, 4000, 9, &[0x11; 18]),
        )),
    ));
    k.push(mk(
        "ping_router",
        "ICMP echo requests to the router's lan address (answered in place)",
        Side::Lan,
        rep(net.from_lan(
            &Ip {
                dst: net.lan_ip,
                proto: proto::ICMP,
                ..out_udp
            },
            &icmp(8, 0, [0, 7, 0, 1], &[0x55; 16]),
        )),
    ));
    k.push(mk(
        "udp_to_router",
        "UDP to a closed port of the router's lan address",
        Side::Lan,
        rep(net.from_lan(
            &Ip {
                dst: net.lan_ip,
                ..out_udp
            },
            &udp(h, net.lan_ip, 4000, 9999, &[0x11; 18]),
        )),
    ));
    k
}

/// Random frames: `n` frames of 1..=200 random bytes (a third with EtherType IPv4 and a
/// valid-looking IPv4 header with a correct checksum and random fields, a third ARP-typed),
/// addressed to the lan port. Deterministic for a seed.
pub fn random_frames(net: &Net, n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let len = 1 + rng.below(200) as usize;
            let mut f = rng.bytes(len);
            if len >= 14 {
                f[..6].copy_from_slice(&net.lan_mac);
                match i % 3 {
                    0 => f[12..14].copy_from_slice(&ETH_IPV4.to_be_bytes()),
                    1 => f[12..14].copy_from_slice(&ETH_ARP.to_be_bytes()),
                    _ => {}
                }
            }
            if i % 3 == 0 && len >= 34 {
                f[14] = 0x45;
                f[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
                if rng.below(2) == 0 {
                    f[26..30].copy_from_slice(&net.host_ip.octets());
                }
                f[24..26].fill(0);
                let c = checksum(0, &f[14..34]);
                f[24..26].copy_from_slice(&c.to_be_bytes());
            }
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{EthernetFrame, Ipv4Packet, TcpPacket, UdpPacket};

    #[test]
    fn the_corpus_has_at_least_30_distinct_kinds_with_frames() {
        let c = corpus(&Net::default(), 4);
        assert!(c.len() >= 30, "{} kinds", c.len());
        let mut names: Vec<_> = c.iter().map(|k| k.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), c.len(), "duplicate kind names");
        for kind in &c {
            assert!(kind.frames.len() >= 4, "{}", kind.name);
            assert!(!kind.what.is_empty());
        }
        assert_eq!(corpus(&Net::default(), 4)[7].frames, c[7].frames);
    }

    #[test]
    fn builders_make_valid_headers_smoltcp_accepts() {
        let net = Net::default();
        for f in [net.legit_udp(7, 18), net.legit_udp(7, 528)] {
            let e = EthernetFrame::new_checked(&f[..]).unwrap();
            let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
            assert!(ip.verify_checksum());
            let u = UdpPacket::new_checked(ip.payload()).unwrap();
            assert!(u.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into()));
        }
        let f = net.legit_tcp(9);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
        let t = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(t.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into()));
        assert_eq!(t.src_port(), 9);
    }

    #[test]
    fn bad_checksum_kind_is_wrong_only_in_its_checksum() {
        let c = corpus(&Net::default(), 1);
        let k = c.iter().find(|k| k.name == "ip_bad_checksum").unwrap();
        let e = EthernetFrame::new_checked(&k.frames[0][..]).unwrap();
        let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
        assert!(!ip.verify_checksum());
        assert_eq!(ip.total_len(), 46);
    }

    #[test]
    fn random_frames_are_deterministic() {
        let net = Net::default();
        assert_eq!(random_frames(&net, 50, 3), random_frames(&net, 50, 3));
        assert_ne!(random_frames(&net, 50, 3), random_frames(&net, 50, 4));
    }
}
