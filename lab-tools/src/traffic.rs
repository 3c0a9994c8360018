//! Synthetic lab traffic: IPv4 UDP, TCP and ICMP echo frames built with smoltcp's wire module,
//! with every length and checksum valid, written to pcap files for DPDK's `net_pcap` PMD.
//!
//! # Frame sizes
//!
//! Sizes are **on-the-wire Ethernet frame sizes including the 4-byte FCS**, as RFC 2544 counts
//! them (64, 128, 256, 512, 1024, 1280, 1518). The FCS is not part of a captured frame, so the
//! bytes written to the pcap (and handed to the PMD) are `size - 4`: a size of 64 gives a
//! 60-byte frame (14-byte Ethernet header + 46 bytes of IPv4 packet). Valid sizes are
//! 64..=1518; no VLAN tag is ever added.
//!
//! # Flows and payload
//!
//! Packet `i` belongs to flow `f = i % flows`. Flow `f` uses source address `src_ip + f` (the
//! addition wraps within the last two octets) and source port `src_port + f` (wrapping, `u16`);
//! an ICMP echo request uses identifier `src_port + f` and sequence number `i` (truncated to
//! `u16`). The payload is a deterministic function of `(seed, i)`: its first 8 bytes (fewer if
//! the payload is shorter) hold `i` XOR a key derived from the seed, little-endian, so frames of
//! one spec are pairwise distinct; the rest is a pseudo-random stream seeded by `(seed, i)`.
//! The IPv4 identification field is `i` truncated to `u16`; DF is set.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ETHERNET_HEADER_LEN, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr,
    IPV4_HEADER_LEN, Icmpv4Packet, Icmpv4Repr, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr,
    TCP_HEADER_LEN, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UDP_HEADER_LEN, UdpPacket,
    UdpRepr,
};

/// Length of the Ethernet frame check sequence, counted in sizes but absent from captures.
pub const FCS_LEN: usize = 4;
/// Smallest on-the-wire frame size (with FCS).
pub const MIN_SIZE: usize = 64;
/// Largest on-the-wire frame size (with FCS) of an untagged frame with a 1500-byte MTU.
pub const MAX_SIZE: usize = 1518;

/// Length of an ICMP echo request header (type, code, checksum, identifier, sequence).
pub const ICMP_ECHO_HEADER_LEN: usize = 8;

/// The repeating IMIX size sequence: 7 × 64, 4 × 570, 1 × 1518 out of every 12 frames,
/// interleaved so that any window of a few frames already has roughly the right mix.
pub const IMIX_PATTERN: [usize; 12] = [64, 64, 570, 64, 64, 570, 64, 64, 570, 64, 570, 1518];

/// Protocol of the generated frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// UDP datagrams.
    Udp,
    /// TCP segments with ACK|PSH set, sequence number = packet index, no options.
    Tcp,
    /// ICMP echo requests.
    Icmp,
    /// Round-robin by packet index: UDP, TCP, ICMP, UDP, ... Note that with a flow count that
    /// is a multiple of 3 each flow then carries a single protocol.
    Mix,
}

/// The frame sizes to generate (on-the-wire sizes including FCS; see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sizes {
    /// Every frame has this size.
    Fixed(usize),
    /// Classic simple IMIX 7:4:1 of 64, 570, 1518, in the order of [`IMIX_PATTERN`].
    Imix,
    /// Cycle through these sizes: packet `i` has size `list[i % list.len()]`.
    List(Vec<usize>),
}

/// What to generate. See the module docs for how flows, sizes and payloads are derived.
#[derive(Debug, Clone)]
pub struct GenSpec {
    /// Number of frames.
    pub count: usize,
    /// Number of distinct flows, 1..=65536.
    pub flows: usize,
    pub sizes: Sizes,
    pub proto: Proto,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// Source address of flow 0; flow `f` uses `src_ip + f` within the last two octets.
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    /// Source port (UDP/TCP) or echo identifier (ICMP) of flow 0; flow `f` adds `f`.
    pub src_port: u16,
    pub dst_port: u16,
    pub ttl: u8,
    /// Seed of the payload bytes.
    pub seed: u64,
}

impl Default for GenSpec {
    /// 1000 64-byte UDP frames in 16 flows, 02:00:00:00:00:01 -> 02:00:00:00:00:02,
    /// 198.18.0.1:1024 -> 198.19.0.1:9 (RFC 2544 benchmarking addresses, discard port), TTL 64.
    fn default() -> Self {
        GenSpec {
            count: 1000,
            flows: 16,
            sizes: Sizes::Fixed(64),
            proto: Proto::Udp,
            src_mac: [0x02, 0, 0, 0, 0, 0x01],
            dst_mac: [0x02, 0, 0, 0, 0, 0x02],
            src_ip: Ipv4Addr::new(198, 18, 0, 1),
            dst_ip: Ipv4Addr::new(198, 19, 0, 1),
            src_port: 1024,
            dst_port: 9,
            ttl: 64,
            seed: 1,
        }
    }
}

impl Proto {
    /// The concrete protocol of packet `index` (resolves [`Proto::Mix`]).
    pub fn for_index(self, index: usize) -> Proto {
        match self {
            Proto::Mix => [Proto::Udp, Proto::Tcp, Proto::Icmp][index % 3],
            p => p,
        }
    }

    /// Bytes of headers above Ethernet (IPv4 + transport) of a frame of this protocol; for
    /// `Mix`, the largest of the three.
    pub fn header_len(self) -> usize {
        IPV4_HEADER_LEN
            + match self {
                Proto::Udp => UDP_HEADER_LEN,
                Proto::Tcp | Proto::Mix => TCP_HEADER_LEN,
                Proto::Icmp => ICMP_ECHO_HEADER_LEN,
            }
    }
}

impl Sizes {
    /// On-the-wire size (with FCS) of packet `index`.
    ///
    /// # Panics
    /// On an empty `List`.
    pub fn for_index(&self, index: usize) -> usize {
        match self {
            Sizes::Fixed(n) => *n,
            Sizes::Imix => IMIX_PATTERN[index % IMIX_PATTERN.len()],
            Sizes::List(list) => list[index % list.len()],
        }
    }

    /// Every distinct size this value can produce.
    fn all(&self) -> &[usize] {
        match self {
            Sizes::Fixed(n) => std::slice::from_ref(n),
            Sizes::Imix => &IMIX_PATTERN,
            Sizes::List(list) => list,
        }
    }
}

fn check_size(size: usize) -> Result<(), String> {
    if (MIN_SIZE..=MAX_SIZE).contains(&size) {
        Ok(())
    } else {
        Err(format!(
            "frame size {size} out of range {MIN_SIZE}..={MAX_SIZE} (sizes include the 4-byte FCS)"
        ))
    }
}

/// Checks a spec before generating from it: [`frame`] panics on a spec this rejects.
///
/// Errors: `flows` outside 1..=65536; an empty size list; a size outside 64..=1518 or too small
/// for the headers of the protocol; destination port 0 for UDP or TCP; a TCP flow whose source
/// port would be 0 (`src_port + f` wrapping to 0).
pub fn validate(spec: &GenSpec) -> Result<(), String> {
    if spec.flows == 0 || spec.flows > 65536 {
        return Err(format!(
            "flows must be 1..=65536 (flows vary the last two octets of the source address), got {}",
            spec.flows
        ));
    }
    if let Sizes::List(list) = &spec.sizes
        && list.is_empty()
    {
        return Err("size list is empty".to_string());
    }
    let needed = ETHERNET_HEADER_LEN + spec.proto.header_len() + FCS_LEN;
    for &size in spec.sizes.all() {
        check_size(size)?;
        if size < needed {
            return Err(format!(
                "frame size {size} cannot hold the {needed} bytes of {:?} headers and FCS",
                spec.proto
            ));
        }
    }
    let has = |p: Proto| spec.proto == p || spec.proto == Proto::Mix;
    if (has(Proto::Udp) || has(Proto::Tcp)) && spec.dst_port == 0 {
        return Err("destination port 0 is not valid for UDP or TCP".to_string());
    }
    // Source ports used are src_port .. src_port + flows - 1 (wrapping); 0 is among them iff
    // src_port == 0 or the range runs past 65535.
    if has(Proto::Tcp) && (spec.src_port == 0 || spec.src_port as usize + spec.flows > 65536) {
        return Err(format!(
            "TCP source port would be 0 for some flow (src_port {} + up to {} flows wraps)",
            spec.src_port,
            spec.flows - 1
        ));
    }
    Ok(())
}

/// Source address of flow `flow`: `base` plus `flow`, wrapping within the last two octets.
fn flow_addr(base: Ipv4Addr, flow: usize) -> Ipv4Addr {
    let b = u32::from(base);
    let low = (b as u16).wrapping_add(flow as u16);
    Ipv4Addr::from((b & 0xffff_0000) | u32::from(low))
}

/// SplitMix64: a tiny, well-mixed deterministic generator (Steele, Lea, Flood 2014).
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` with the payload of packet `index` (see the module docs).
pub(crate) fn fill_payload(buf: &mut [u8], seed: u64, index: usize) {
    let mut key_state = seed;
    let key = splitmix64(&mut key_state);
    let tag = (index as u64 ^ key).to_le_bytes();
    let n = tag.len().min(buf.len());
    buf[..n].copy_from_slice(&tag[..n]);
    let mut state = key ^ (index as u64).wrapping_mul(0xd605_bbb5_8c8a_bbb5);
    for chunk in buf[n..].chunks_mut(8) {
        let word = splitmix64(&mut state).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// The `index`-th frame of `spec`, without FCS (`size - 4` bytes).
///
/// # Panics
/// If `spec` fails [`validate`] (zero flows, empty size list, a size too small for the
/// headers).
pub fn frame(spec: &GenSpec, index: usize) -> Vec<u8> {
    assert!(spec.flows > 0, "traffic::frame: flows must be > 0");
    let size = spec.sizes.for_index(index);
    let proto = spec.proto.for_index(index);
    let len = size.saturating_sub(FCS_LEN);
    assert!(
        len >= ETHERNET_HEADER_LEN + proto.header_len(),
        "traffic::frame: size {size} too small for {proto:?}"
    );
    assert!(
        size <= MAX_SIZE,
        "traffic::frame: size {size} above {MAX_SIZE}"
    );

    let flow = index % spec.flows;
    let src_ip = flow_addr(spec.src_ip, flow);
    let dst_ip = spec.dst_ip;
    let src_port = spec.src_port.wrapping_add(flow as u16);
    let caps = ChecksumCapabilities::default();
    let (src_addr, dst_addr) = (IpAddress::Ipv4(src_ip), IpAddress::Ipv4(dst_ip));

    let mut buf = vec![0u8; len];
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr {
        src_addr: EthernetAddress(spec.src_mac),
        dst_addr: EthernetAddress(spec.dst_mac),
        ethertype: EthernetProtocol::Ipv4,
    }
    .emit(&mut eth);

    let ip_payload_len = len - ETHERNET_HEADER_LEN - IPV4_HEADER_LEN;
    let ip_repr = Ipv4Repr {
        src_addr: src_ip,
        dst_addr: dst_ip,
        next_header: match proto {
            Proto::Tcp => IpProtocol::Tcp,
            Proto::Icmp => IpProtocol::Icmp,
            Proto::Udp | Proto::Mix => IpProtocol::Udp,
        },
        payload_len: ip_payload_len,
        hop_limit: spec.ttl,
    };
    let mut ip = Ipv4Packet::new_unchecked(eth.payload_mut());
    ip_repr.emit(&mut ip, &caps);
    // Identification = packet index, to tell frames apart in captures; re-checksum.
    ip.set_ident(index as u16);
    ip.fill_checksum();

    let l4 = ip.payload_mut();
    match proto {
        Proto::Udp | Proto::Mix => {
            let payload_len = ip_payload_len - UDP_HEADER_LEN;
            UdpRepr {
                src_port,
                dst_port: spec.dst_port,
            }
            .emit(
                &mut UdpPacket::new_unchecked(l4),
                &src_addr,
                &dst_addr,
                payload_len,
                |p| fill_payload(p, spec.seed, index),
                &caps,
            );
        }
        Proto::Tcp => {
            let mut payload = vec![0u8; ip_payload_len - TCP_HEADER_LEN];
            fill_payload(&mut payload, spec.seed, index);
            TcpRepr {
                src_port,
                dst_port: spec.dst_port,
                control: TcpControl::Psh,
                seq_number: TcpSeqNumber(index as u32 as i32),
                ack_number: Some(TcpSeqNumber(1)),
                window_len: 65535,
                window_scale: None,
                max_seg_size: None,
                sack_permitted: false,
                sack_ranges: [None, None, None],
                timestamp: None,
                payload: &payload,
            }
            .emit(
                &mut TcpPacket::new_unchecked(l4),
                &src_addr,
                &dst_addr,
                &caps,
            );
        }
        Proto::Icmp => {
            let mut data = vec![0u8; ip_payload_len - ICMP_ECHO_HEADER_LEN];
            fill_payload(&mut data, spec.seed, index);
            Icmpv4Repr::EchoRequest {
                ident: src_port,
                seq_no: index as u16,
                data: &data,
            }
            .emit(&mut Icmpv4Packet::new_unchecked(l4), &caps);
        }
    }
    buf
}

/// The `spec.count` frames of `spec`, in order, built lazily.
///
/// # Panics
/// While iterating, if `spec` fails [`validate`].
pub fn generate(spec: &GenSpec) -> impl Iterator<Item = Vec<u8>> + '_ {
    (0..spec.count).map(move |i| frame(spec, i))
}

/// Validates `spec` and writes its frames to a pcap file at `path` (timestamps 1 µs apart,
/// starting at 0). Returns the number of frames written. An invalid spec is an
/// `InvalidInput` error and creates no file.
pub fn write_pcap(spec: &GenSpec, path: &Path) -> std::io::Result<usize> {
    validate(spec).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    crate::pcap::write_frames(path, generate(spec))
}

/// Parses a size argument: `"64"`, `"imix"` (any case), or a comma-separated list
/// `"64,128,1518"`. Sizes include the FCS and must be 64..=1518.
pub fn parse_sizes(s: &str) -> Result<Sizes, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("imix") {
        return Ok(Sizes::Imix);
    }
    let mut list = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let size: usize = part.parse().map_err(|_| {
            format!("bad frame size {part:?} in {s:?} (expected e.g. 64, imix or 64,128,1518)")
        })?;
        check_size(size)?;
        list.push(size);
    }
    Ok(match list.as_slice() {
        [one] => Sizes::Fixed(*one),
        _ => Sizes::List(list),
    })
}

/// Parses a protocol argument: `udp`, `tcp`, `icmp` or `mix` (any case).
pub fn parse_proto(s: &str) -> Result<Proto, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "udp" => Ok(Proto::Udp),
        "tcp" => Ok(Proto::Tcp),
        "icmp" => Ok(Proto::Icmp),
        "mix" => Ok(Proto::Mix),
        _ => Err(format!(
            "unknown protocol {s:?} (expected udp, tcp, icmp or mix)"
        )),
    }
}

impl FromStr for Sizes {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_sizes(s)
    }
}

impl FromStr for Proto {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_proto(s)
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Icmp => "icmp",
            Proto::Mix => "mix",
        })
    }
}

impl fmt::Display for Sizes {
    /// The form [`parse_sizes`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sizes::Fixed(n) => write!(f, "{n}"),
            Sizes::Imix => f.write_str("imix"),
            Sizes::List(list) => {
                for (i, n) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{n}")?;
                }
                Ok(())
            }
        }
    }
}

/// A valid 60-byte UDP frame from the default spec, as a base for the malformed ones.
fn garbage_base() -> Vec<u8> {
    frame(&GenSpec::default(), 0)
}

/// RFC 1071 ones' complement sum of 16-bit big-endian words (`data` of even length).
fn ones_complement_sum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks_exact(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Offset of the IPv4 header inside a frame.
const IP: usize = ETHERNET_HEADER_LEN;

/// Malformed frames for robustness tests, each with what is wrong with it:
///
/// 1. a 10-byte runt: shorter than an Ethernet header;
/// 2. 60 bytes, ethertype IPv4, IP version field 5 (header checksum valid);
/// 3. 60 bytes, IPv4 header length (IHL) 3, i.e. 12 bytes, below the minimum of 5 (RFC 791);
///    the checksum over the usual 20 bytes is valid;
/// 4. 60 bytes, IPv4 total length 1000, more than the 46 bytes the frame holds (checksum valid);
/// 5. 60 bytes, IPv4 header checksum wrong (off by one), everything else valid.
pub fn garbage_frames_described() -> Vec<(&'static str, Vec<u8>)> {
    let runt = garbage_base()[..10].to_vec();

    let mut version5 = garbage_base();
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut version5[IP..]);
        ip.set_version(5);
        ip.fill_checksum();
    }

    let mut ihl3 = garbage_base();
    // 0x43 = version 4, IHL 3 words. The checksum is redone over the usual 20 bytes so that
    // only the length is wrong. smoltcp's `Ipv4Packet::new_checked` accepts this header:
    // the forwarder itself must reject IHL < 5 (RFC 1812 section 5.2.2).
    ihl3[IP] = 0x43;
    ihl3[IP + 10..IP + 12].fill(0);
    let sum = ones_complement_sum(&ihl3[IP..IP + IPV4_HEADER_LEN]);
    ihl3[IP + 10..IP + 12].copy_from_slice(&(!sum).to_be_bytes());

    let mut too_long = garbage_base();
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut too_long[IP..]);
        ip.set_total_len(1000);
        ip.fill_checksum();
    }

    let mut bad_csum = garbage_base();
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut bad_csum[IP..]);
        let c = ip.checksum();
        ip.set_checksum(c.wrapping_add(1));
    }

    vec![
        ("10-byte runt, shorter than an Ethernet header", runt),
        ("IPv4 ethertype but IP version 5", version5),
        ("IPv4 header length (IHL) 3, below the minimum 5", ihl3),
        (
            "IPv4 total length 1000 exceeds the 46-byte frame payload",
            too_long,
        ),
        ("IPv4 header checksum wrong", bad_csum),
    ]
}

/// The frames of [`garbage_frames_described`], without the descriptions.
pub fn garbage_frames() -> Vec<Vec<u8>> {
    garbage_frames_described()
        .into_iter()
        .map(|(_, f)| f)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap;
    use smoltcp::wire::Icmpv4Message;
    use std::collections::HashSet;

    /// Parses a generated frame back, checks every length and checksum, and returns
    /// (proto, src ip, src port or echo ident, ttl, transport payload).
    fn check(frame: &[u8]) -> (Proto, Ipv4Addr, u16, u8, Vec<u8>) {
        let eth = EthernetFrame::new_checked(frame).expect("ethernet");
        assert_eq!(eth.ethertype(), EthernetProtocol::Ipv4);
        let ip = Ipv4Packet::new_checked(eth.payload()).expect("ipv4");
        assert!(ip.verify_checksum(), "ipv4 checksum");
        assert_eq!(ip.version(), 4);
        assert_eq!(ip.header_len() as usize, IPV4_HEADER_LEN);
        assert_eq!(ip.total_len() as usize, frame.len() - ETHERNET_HEADER_LEN);
        let (src, dst) = (
            IpAddress::Ipv4(ip.src_addr()),
            IpAddress::Ipv4(ip.dst_addr()),
        );
        let caps = ChecksumCapabilities::default();
        match ip.next_header() {
            IpProtocol::Udp => {
                let udp = UdpPacket::new_checked(ip.payload()).expect("udp");
                assert!(udp.verify_checksum(&src, &dst), "udp checksum");
                assert_ne!(udp.checksum(), 0);
                assert_eq!(udp.len() as usize, ip.payload().len());
                UdpRepr::parse(&udp, &src, &dst, &caps).expect("udp repr");
                let payload = udp.payload().to_vec();
                (
                    Proto::Udp,
                    ip.src_addr(),
                    udp.src_port(),
                    ip.hop_limit(),
                    payload,
                )
            }
            IpProtocol::Tcp => {
                let tcp = TcpPacket::new_checked(ip.payload()).expect("tcp");
                assert!(tcp.verify_checksum(&src, &dst), "tcp checksum");
                assert!(tcp.ack() && tcp.psh());
                assert!(!tcp.syn() && !tcp.fin() && !tcp.rst());
                let repr = TcpRepr::parse(&tcp, &src, &dst, &caps).expect("tcp repr");
                assert_eq!(repr.control, TcpControl::Psh);
                let payload = tcp.payload().to_vec();
                (
                    Proto::Tcp,
                    ip.src_addr(),
                    tcp.src_port(),
                    ip.hop_limit(),
                    payload,
                )
            }
            IpProtocol::Icmp => {
                let icmp = Icmpv4Packet::new_checked(ip.payload()).expect("icmp");
                assert!(icmp.verify_checksum(), "icmp checksum");
                assert_eq!(icmp.msg_type(), Icmpv4Message::EchoRequest);
                Icmpv4Repr::parse(&icmp, &caps).expect("icmp repr");
                let payload = icmp.data().to_vec();
                (
                    Proto::Icmp,
                    ip.src_addr(),
                    icmp.echo_ident(),
                    ip.hop_limit(),
                    payload,
                )
            }
            p => panic!("unexpected protocol {p}"),
        }
    }

    fn spec(proto: Proto, sizes: Sizes) -> GenSpec {
        GenSpec {
            count: 48,
            proto,
            sizes,
            ..GenSpec::default()
        }
    }

    #[test]
    fn default_spec_is_valid() {
        let s = GenSpec::default();
        assert_eq!(validate(&s), Ok(()));
        assert_eq!(generate(&s).count(), 1000);
        let f = frame(&s, 0);
        assert_eq!(f.len(), 60);
        assert_eq!(&f[0..6], &[2, 0, 0, 0, 0, 2]);
        assert_eq!(&f[6..12], &[2, 0, 0, 0, 0, 1]);
        let (proto, src, port, ttl, _) = check(&f);
        assert_eq!(
            (proto, src, port, ttl),
            (Proto::Udp, Ipv4Addr::new(198, 18, 0, 1), 1024, 64)
        );
    }

    #[test]
    fn sizes_exact_and_checksums_valid() {
        for proto in [Proto::Udp, Proto::Tcp, Proto::Icmp, Proto::Mix] {
            for size in [64, 65, 128, 256, 512, 570, 1024, 1280, 1518] {
                let s = spec(proto, Sizes::Fixed(size));
                assert_eq!(validate(&s), Ok(()));
                for (i, f) in generate(&s).enumerate() {
                    assert_eq!(f.len(), size - FCS_LEN, "{proto:?} size {size}");
                    let (p, ..) = check(&f);
                    assert_eq!(p, proto.for_index(i));
                }
            }
        }
    }

    #[test]
    fn mix_is_round_robin() {
        let s = spec(Proto::Mix, Sizes::Fixed(128));
        let protos: Vec<Proto> = generate(&s).take(6).map(|f| check(&f).0).collect();
        assert_eq!(
            protos,
            [
                Proto::Udp,
                Proto::Tcp,
                Proto::Icmp,
                Proto::Udp,
                Proto::Tcp,
                Proto::Icmp
            ]
        );
    }

    #[test]
    fn flows_distinct_and_cyclic() {
        for proto in [Proto::Udp, Proto::Tcp, Proto::Icmp] {
            let s = GenSpec {
                count: 64,
                flows: 16,
                proto,
                ..GenSpec::default()
            };
            let keys: Vec<(Ipv4Addr, u16)> = generate(&s)
                .map(|f| {
                    let (_, ip, port, ..) = check(&f);
                    (ip, port)
                })
                .collect();
            let distinct: HashSet<_> = keys.iter().collect();
            assert_eq!(distinct.len(), 16, "{proto:?}");
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(*k, keys[i % 16]);
                let f = (i % 16) as u8;
                assert_eq!(*k, (Ipv4Addr::new(198, 18, 0, 1 + f), 1024 + u16::from(f)));
            }
        }
    }

    #[test]
    fn flow_address_wraps_in_last_two_octets() {
        assert_eq!(
            flow_addr(Ipv4Addr::new(10, 1, 255, 255), 2),
            Ipv4Addr::new(10, 1, 0, 1)
        );
        assert_eq!(
            flow_addr(Ipv4Addr::new(10, 1, 0, 200), 100),
            Ipv4Addr::new(10, 1, 1, 44)
        );
        let s = GenSpec {
            count: 65536,
            flows: 65536,
            src_port: 1,
            ..GenSpec::default()
        };
        assert_eq!(validate(&s), Ok(()));
        let distinct: HashSet<_> = (0..65536)
            .step_by(997)
            .map(|i| frame(&s, i)[26..30].to_vec())
            .collect();
        assert_eq!(distinct.len(), 65536usize.div_ceil(997));
    }

    #[test]
    fn frames_pairwise_distinct_and_deterministic() {
        for proto in [Proto::Udp, Proto::Tcp, Proto::Icmp] {
            let s = GenSpec {
                count: 500,
                flows: 1,
                proto,
                ..GenSpec::default()
            };
            let payloads: HashSet<Vec<u8>> = generate(&s).map(|f| check(&f).4).collect();
            assert_eq!(payloads.len(), 500, "{proto:?}");
            let frames: Vec<_> = generate(&s).collect();
            assert_eq!(frames, generate(&s).collect::<Vec<_>>());
            let other = GenSpec {
                seed: 2,
                ..s.clone()
            };
            assert_ne!(frame(&s, 7), frame(&other, 7));
        }
    }

    #[test]
    fn ttl_tcp_seq_and_icmp_fields() {
        let s = GenSpec {
            ttl: 3,
            proto: Proto::Tcp,
            ..GenSpec::default()
        };
        let f = frame(&s, 37);
        assert_eq!(check(&f).3, 3);
        let tcp = TcpPacket::new_checked(&f[IP + IPV4_HEADER_LEN..]).unwrap();
        assert_eq!(tcp.seq_number(), TcpSeqNumber(37));
        assert_eq!(tcp.dst_port(), 9);

        let s = GenSpec {
            proto: Proto::Icmp,
            ..GenSpec::default()
        };
        let f = frame(&s, 37);
        let icmp = Icmpv4Packet::new_checked(&f[IP + IPV4_HEADER_LEN..]).unwrap();
        assert_eq!(icmp.echo_ident(), 1024 + 37 % 16);
        assert_eq!(icmp.echo_seq_no(), 37);
        let ip = Ipv4Packet::new_checked(&f[IP..]).unwrap();
        assert_eq!(ip.ident(), 37);
    }

    #[test]
    fn imix_proportions_and_order() {
        let s = spec(Proto::Udp, Sizes::Imix);
        let s = GenSpec { count: 1200, ..s };
        let lens: Vec<usize> = generate(&s).map(|f| f.len() + FCS_LEN).collect();
        let count = |n| lens.iter().filter(|&&l| l == n).count();
        assert_eq!((count(64), count(570), count(1518)), (700, 400, 100));
        assert_eq!(lens[..12], IMIX_PATTERN);
        assert_eq!(lens[12..24], IMIX_PATTERN);
        for f in generate(&s).take(12) {
            check(&f);
        }
    }

    #[test]
    fn size_list_cycles() {
        let s = spec(Proto::Tcp, Sizes::List(vec![64, 128, 1518]));
        let lens: Vec<usize> = generate(&s).take(7).map(|f| f.len()).collect();
        assert_eq!(lens, [60, 124, 1514, 60, 124, 1514, 60]);
    }

    #[test]
    fn parse_functions() {
        assert_eq!(parse_sizes("64"), Ok(Sizes::Fixed(64)));
        assert_eq!(parse_sizes(" IMIX "), Ok(Sizes::Imix));
        assert_eq!(
            parse_sizes("64, 128,1518"),
            Ok(Sizes::List(vec![64, 128, 1518]))
        );
        assert!(parse_sizes("").is_err());
        assert!(parse_sizes("64,").is_err());
        assert!(parse_sizes("abc").unwrap_err().contains("bad frame size"));
        assert!(parse_sizes("63").unwrap_err().contains("out of range"));
        assert!(parse_sizes("64,1519").is_err());
        for s in ["64", "imix", "64,128,1518"] {
            assert_eq!(parse_sizes(s).unwrap().to_string(), s);
        }

        assert_eq!(parse_proto("udp"), Ok(Proto::Udp));
        assert_eq!(parse_proto("TCP"), Ok(Proto::Tcp));
        assert_eq!(parse_proto("icmp"), Ok(Proto::Icmp));
        assert_eq!("mix".parse::<Proto>(), Ok(Proto::Mix));
        assert!(
            parse_proto("sctp")
                .unwrap_err()
                .contains("unknown protocol")
        );
        for p in [Proto::Udp, Proto::Tcp, Proto::Icmp, Proto::Mix] {
            assert_eq!(parse_proto(&p.to_string()), Ok(p));
        }
    }

    #[test]
    fn validate_errors() {
        let ok = GenSpec::default();
        let err = |s: GenSpec| validate(&s).unwrap_err();
        assert!(
            err(GenSpec {
                flows: 0,
                ..ok.clone()
            })
            .contains("flows")
        );
        assert!(
            err(GenSpec {
                flows: 65537,
                ..ok.clone()
            })
            .contains("flows")
        );
        assert!(
            err(GenSpec {
                sizes: Sizes::Fixed(63),
                ..ok.clone()
            })
            .contains("out of range")
        );
        assert!(
            err(GenSpec {
                sizes: Sizes::Fixed(1519),
                ..ok.clone()
            })
            .contains("out of range")
        );
        assert!(
            err(GenSpec {
                sizes: Sizes::List(vec![]),
                ..ok.clone()
            })
            .contains("empty")
        );
        let bad_list = Sizes::List(vec![64, 9000]);
        assert!(
            err(GenSpec {
                sizes: bad_list,
                ..ok.clone()
            })
            .contains("9000")
        );
        assert!(
            err(GenSpec {
                dst_port: 0,
                ..ok.clone()
            })
            .contains("destination port")
        );
        let tcp = GenSpec {
            proto: Proto::Tcp,
            ..ok.clone()
        };
        assert!(
            err(GenSpec {
                src_port: 0,
                ..tcp.clone()
            })
            .contains("source port")
        );
        assert!(
            err(GenSpec {
                src_port: 65530,
                ..tcp.clone()
            })
            .contains("source port")
        );
        assert_eq!(
            validate(&GenSpec {
                src_port: 65520,
                ..tcp.clone()
            }),
            Ok(())
        );
        let mix = GenSpec {
            proto: Proto::Mix,
            ..ok.clone()
        };
        assert!(err(GenSpec { src_port: 0, ..mix }).contains("source port"));
        // UDP may use source port 0; ICMP has no ports.
        assert_eq!(
            validate(&GenSpec {
                src_port: 0,
                ..ok.clone()
            }),
            Ok(())
        );
        let icmp = GenSpec {
            proto: Proto::Icmp,
            src_port: 0,
            dst_port: 0,
            ..ok
        };
        assert_eq!(validate(&icmp), Ok(()));
    }

    #[test]
    #[should_panic(expected = "too small")]
    fn frame_panics_on_invalid_size() {
        frame(
            &GenSpec {
                sizes: Sizes::Fixed(40),
                ..GenSpec::default()
            },
            0,
        );
    }

    #[test]
    fn write_pcap_roundtrip() {
        let dir = std::env::temp_dir().join(format!("pollfwd-traffic-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mix.pcap");
        let s = GenSpec {
            count: 100,
            proto: Proto::Mix,
            sizes: Sizes::Imix,
            ..GenSpec::default()
        };
        assert_eq!(write_pcap(&s, &path).unwrap(), 100);
        let frames = pcap::read_pcap(&path).unwrap();
        assert_eq!(frames, generate(&s).collect::<Vec<_>>());

        let bad = GenSpec { flows: 0, ..s };
        let bad_path = dir.join("bad.pcap");
        let e = write_pcap(&bad, &bad_path).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(!bad_path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The pcap files in `testdata/` were written by `pollfwdctl gen-pcap` with the
    /// hand-written pcap writer this crate replaced; the same specs must give the same bytes.
    #[test]
    fn write_pcap_matches_the_files_of_the_old_writer() {
        let dir = std::env::temp_dir().join(format!("pollfwd-golden-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let golden = |name: &str| {
            std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("testdata")
                    .join(name),
            )
            .unwrap()
        };
        let cases = [
            (
                "gen-default.pcap",
                GenSpec {
                    count: 40,
                    ..GenSpec::default()
                },
            ),
            (
                "gen-tcp-list.pcap",
                GenSpec {
                    count: 7,
                    flows: 3,
                    proto: Proto::Tcp,
                    sizes: Sizes::List(vec![64, 128, 1518]),
                    ..GenSpec::default()
                },
            ),
            (
                "gen-icmp.pcap",
                GenSpec {
                    count: 5,
                    flows: 2,
                    proto: Proto::Icmp,
                    sizes: Sizes::Fixed(100),
                    ..GenSpec::default()
                },
            ),
        ];
        for (name, spec) in cases {
            let path = dir.join(name);
            write_pcap(&spec, &path).unwrap();
            assert!(std::fs::read(&path).unwrap() == golden(name), "{name}");
        }
        // `gen-pcap --garbage` appends the malformed frames after the generated ones.
        let spec = GenSpec {
            count: 36,
            flows: 5,
            proto: Proto::Mix,
            sizes: Sizes::Imix,
            src_mac: [0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f],
            dst_mac: [0x12, 0x22, 0x33, 0x44, 0x55, 0x66],
            src_ip: Ipv4Addr::new(10, 1, 255, 254),
            dst_ip: Ipv4Addr::new(192, 0, 2, 9),
            src_port: 65000,
            dst_port: 53,
            ttl: 7,
            ..GenSpec::default()
        };
        let path = dir.join("garbage.pcap");
        let n = pcap::write_frames(&path, generate(&spec).chain(garbage_frames())).unwrap();
        assert_eq!(n, 41);
        assert!(std::fs::read(&path).unwrap() == golden("gen-mix-imix-garbage.pcap"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn garbage_frames_are_malformed_as_described() {
        let g = garbage_frames();
        assert_eq!(g.len(), 5);
        assert_eq!(garbage_frames_described().len(), 5);

        assert_eq!(g[0].len(), 10);
        assert!(EthernetFrame::new_checked(&g[0][..]).is_err());

        for f in &g[1..] {
            assert_eq!(f.len(), 60);
            assert_eq!(
                EthernetFrame::new_checked(&f[..]).unwrap().ethertype(),
                EthernetProtocol::Ipv4
            );
        }
        let caps = ChecksumCapabilities::default();

        let ip = Ipv4Packet::new_unchecked(&g[1][IP..]);
        assert_eq!(ip.version(), 5);
        assert!(ip.verify_checksum());
        assert!(Ipv4Repr::parse(&ip, &caps).is_err());

        let ip = Ipv4Packet::new_unchecked(&g[2][IP..]);
        assert_eq!((ip.version(), ip.header_len()), (4, 12));
        // Valid as a 20-byte header except for the IHL (smoltcp itself does not object).
        assert_eq!(ones_complement_sum(&g[2][IP..IP + IPV4_HEADER_LEN]), 0xffff);

        let ip = Ipv4Packet::new_unchecked(&g[3][IP..]);
        assert_eq!(ip.total_len(), 1000);
        assert!(ip.verify_checksum());
        assert!(Ipv4Packet::new_checked(&g[3][IP..]).is_err());

        let ip = Ipv4Packet::new_checked(&g[4][IP..]).unwrap();
        assert!(!ip.verify_checksum());
        assert!(Ipv4Repr::parse(&ip, &caps).is_err());
    }
}
