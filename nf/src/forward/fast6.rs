//! The IPv6 fast loop: a run of IPv6 frames in a burst without metadata. Plain packets (no
//! extension header, TCP, UDP or ICMPv6, unicast frame and global-looking addresses, hop limit
//! above 1) have their destinations looked up together (`rte_fib6` bulk lookup, one call per
//! run); those routed like the packet before them (the IPv6 route memo: same next-hop id,
//! within the egress MTU) are rewritten in place (hop limit, MACs) without a neighbour
//! lookup. Every other packet takes [`Forward::one`] (and so [`Forward::v6`], the reference
//! for what happens to an IPv6 packet), in burst order.

use dpdk::{BURST_MAX, Mbuf};
use pollfwd_pipeline::{StageCtx, Verdict};

use super::neigh::Lookup;
use super::park::NextHop;
use super::table6::Hop6;
use super::{Forward, Memo, NO_HOP};
use crate::wire::{ether, ipv6, proto, tcp};

/// Bytes of an untagged frame up to the end of the fixed IPv6 header.
const HDR: usize = ether::HEADER_LEN + ipv6::HEADER_LEN;
/// Offsets in the frame (untagged: stages never see VLAN tags).
const PAYLOAD_LEN: usize = ether::HEADER_LEN + ipv6::field::PAYLOAD_LEN.start;
const NEXT_HEADER: usize = ether::HEADER_LEN + ipv6::field::NEXT_HEADER;
const HOP_LIMIT: usize = ether::HEADER_LEN + ipv6::field::HOP_LIMIT;
const DST: usize = ether::HEADER_LEN + ipv6::field::DST.start;
/// The TCP flags byte of a segment right after the fixed header.
const TCP_FLAGS: usize = HDR + tcp::field::FLAGS;

/// The IPv6 route memo (like IPv4's [`Memo`]): the last next hop (`nh`, out of `port`) and
/// the Ethernet addresses (destination, source) to write; `hop`: the next-hop id of the route
/// that led there when it goes through a gateway (else [`NO_HOP`]); `born`: when the
/// neighbour was looked up. It serves later bursts for at most [`super::MEMO_MS`] and is
/// forgotten when the stage gets a new table or learns a neighbour.
#[derive(Clone, Copy)]
pub(super) struct Memo6 {
    hop: u32,
    nh: u128,
    port: u16,
    macs: [u8; 12],
    born: u64,
}

impl Memo6 {
    pub(super) const EMPTY: Memo6 = Memo6 {
        hop: NO_HOP,
        nh: 0,
        port: u16::MAX,
        macs: [0; 12],
        born: 0,
    };
}

/// Per-burst working space of the IPv6 loop, allocated once per stage (no per-burst
/// initialisation): the destinations of a run and their next-hop ids.
pub(super) struct Scratch6 {
    dsts: [[u8; 16]; BURST_MAX],
    ids: [u32; BURST_MAX],
}

impl Scratch6 {
    pub(super) fn new() -> Box<Scratch6> {
        Box::new(Scratch6 {
            dsts: [[0; 16]; BURST_MAX],
            ids: [0; BURST_MAX],
        })
    }
}

/// Whether an IPv6 frame's first 54 bytes (`h`, the frame `len` bytes long) make a plain
/// packet: unicast destination MAC, EtherType IPv6, version 6, the payload within the frame,
/// no extension header (next header TCP, UDP or ICMPv6), hop limit 2..=254 (255: perhaps
/// neighbour discovery, which is never routed), and source and
/// destination outside ::/8 (unspecified, loopback, IPv4-mapped), fe00::/8 (link-local
/// fe80::/10 and the unassigned or deprecated rest) and ff00::/8 (multicast). Any other
/// packet is left to [`Forward::v6`]: these are the checks it makes before the route lookup
/// (with the ones after it that need no route: link-layer group, link-local source, hop
/// limit), some stricter than needed.
#[inline(always)]
fn plain6(h: &[u8; HDR], len: usize) -> bool {
    // Three loads: EtherType, version, traffic class, flow label and payload length; next
    // header, hop limit and the source's first two bytes; the destination's first two.
    let w = u64::from_be_bytes(h[12..20].try_into().expect("8 bytes"));
    let x = u32::from_be_bytes(h[NEXT_HEADER..NEXT_HEADER + 4].try_into().expect("4 bytes"));
    let payload = w as u16 as usize;
    let nh = (x >> 24) as u8;
    let hop = (x >> 16) as u8;
    !ether::is_group(h[0])
        & (w >> 44 == 0x86dd6)
        & (HDR + payload <= len)
        & (nh < 64)
        & ((PLAIN_UPPER >> (nh & 63)) & 1 != 0)
        & (hop > 1)
        & (hop < 255)
        & addr_ok((x >> 8) as u8)
        & addr_ok(h[DST])
}

/// The upper layers a plain packet carries (bits by next-header value, all below 64): TCP,
/// UDP, ICMPv6.
const PLAIN_UPPER: u64 = 1 << proto::TCP | 1 << proto::UDP | 1 << proto::ICMPV6;

/// Whether an address whose first byte is `b` may be forwarded without a second look: not in
/// ::/8, fe00::/8 or ff00::/8 (`b` in 1..=0xfd).
#[inline(always)]
fn addr_ok(b: u8) -> bool {
    b.wrapping_sub(1) < 0xfd
}

/// Whether a frame's EtherType is IPv6 (a frame too short to say is not).
#[inline(always)]
pub(super) fn is_ipv6(d: &[u8]) -> bool {
    d.get(12..14) == Some(&[0x86, 0xdd][..])
}

impl Forward {
    /// The run of IPv6 frames that starts at `pkts[i]` (an IPv6 frame): forwards the plain
    /// packets routed like the one before them in place and everything else through
    /// [`Forward::one`], in order; writes their verdicts and returns where the run ends (the
    /// next non-IPv6 frame, or `pkts.len()`), the bytes of its packets as received, and the
    /// verdict they all got (None: not all the same).
    #[inline(never)]
    pub(super) fn fast6(
        &mut self,
        ctx: &mut StageCtx<'_>,
        pkts: &mut [Mbuf],
        verdicts: &mut [Verdict],
        i: usize,
        memo: &mut Memo,
    ) -> (usize, u64, Option<Verdict>) {
        let n = verdicts.len().min(pkts.len()).min(i + BURST_MAX);
        // Pass 1: which frames are plain, and their destinations.
        let mut plain = 0u64;
        let mut rx_bytes = 0u64;
        // The longest plain packet (IPv6 header and payload): when the egress MTU takes it,
        // the run skips the per-packet MTU test.
        let mut longest = 0u32;
        let mut end = i;
        while end < n {
            let m = &pkts[end];
            let d = m.data();
            if !is_ipv6(d) {
                break;
            }
            let pkt_len = m.pkt_len();
            rx_bytes += pkt_len as u64;
            let k = end - i;
            let dst = &mut self.scratch6.dsts[k];
            match d.first_chunk::<HDR>() {
                Some(h) if pkt_len as usize == d.len() && plain6(h, d.len()) => {
                    plain |= 1 << k;
                    let payload = u16::from_be_bytes([h[PAYLOAD_LEN], h[PAYLOAD_LEN + 1]]);
                    longest = longest.max(payload as u32);
                    *dst = h[DST..HDR].try_into().expect("16 bytes");
                }
                _ => *dst = [0; 16],
            }
            end += 1;
        }
        let count = end - i;
        // Pass 2: every destination's next-hop id, one bulk lookup.
        let has_table = match self.table.v6() {
            Some(t6) if plain != 0 => {
                let s = &mut *self.scratch6;
                t6.lookup_bulk(&s.dsts[..count], &mut s.ids[..count]);
                true
            }
            _ => false,
        };
        if !has_table {
            plain = 0;
        }
        // Pass 3: in order, runs of packets the memo routes, and the others one by one.
        let mut m6 = if ctx.now.wrapping_sub(self.memo6.born) < self.memo_ticks {
            self.memo6
        } else {
            Memo6::EMPTY
        };
        let in_port = ctx.in_port.unwrap_or(u16::MAX);
        // The run's verdict when every packet got the same one.
        let mut one: Option<Verdict> = None;
        let mut same = true;
        let mut note = |v: Verdict| {
            let f = *one.get_or_insert(v);
            same &= v == f;
        };
        let mut k = i;
        while k < end {
            if m6.hop != NO_HOP {
                let run = Run6 {
                    hop: m6.hop,
                    macs: m6.macs,
                    frame_max: self.frame_max(m6.port),
                    clamp: self.mss_any && self.mss_for(in_port, m6.port) != 0,
                };
                let start = k;
                let ids = &self.scratch6.ids[..count];
                // The run without per-packet tests beyond the route when every plain packet
                // fits the egress MTU and no MSS clamp applies; the one with them out of line.
                k = if run.clamp || HDR as u32 + longest > run.frame_max {
                    run.forward_checking(&mut pkts[..end], ids, plain, (i, k))
                } else {
                    run.forward::<false>(&mut pkts[..end], ids, plain, (i, k))
                };
                if k > start {
                    verdicts[start..k].fill(Verdict::Tx(m6.port));
                    note(Verdict::Tx(m6.port));
                }
                if k >= end {
                    break;
                }
            }
            let v = if plain & (1 << (k - i)) != 0 {
                self.route6(ctx, pkts, k, self.scratch6.ids[k - i], &mut m6)
            } else {
                None
            }
            .unwrap_or_else(|| {
                self.memo6 = m6;
                let v = self.one(ctx, pkts, k, memo);
                m6 = self.memo6;
                v
            });
            verdicts[k] = v;
            note(v);
            k += 1;
        }
        self.memo6 = m6;
        (end, rx_bytes, one.filter(|_| same))
    }

    /// A plain packet (`pkts[k]`, next-hop id `id`) the memo's run did not take: routed here
    /// when its route forwards it within the egress MTU (and it needs no MSS clamp) and its
    /// next hop's MAC is known (the memo, else a neighbour lookup, which the memo then
    /// keeps); `None`: it takes the general path.
    #[inline(always)]
    fn route6(
        &mut self,
        ctx: &mut StageCtx<'_>,
        pkts: &mut [Mbuf],
        k: usize,
        id: u32,
        m6: &mut Memo6,
    ) -> Option<Verdict> {
        let (port, gateway, path) = match self.table.v6()?.hop(id)? {
            Hop6::Forward { port, gateway } => (port, gateway, None),
            Hop6::Group(g) => {
                // The member of this packet's flow; counted when forwarded here (else by the
                // general path, which picks it again).
                let group = self.table.v6()?.group(g);
                let j = group.pick(super::ecmp::packet_hash6(
                    pkts[k].data(),
                    super::v6::L3,
                    self.shared.params.ecmp_symmetric,
                ));
                let Hop6::Forward { port, gateway } = group.members[j] else {
                    return None;
                };
                (port, gateway, Some((g, j)))
            }
            Hop6::Local => return None,
        };
        let in_port = ctx.in_port.unwrap_or(u16::MAX);
        let frame_max = self.frame_max(port);
        let clamp = self.mss_any && self.mss_for(in_port, port) != 0;
        let d = pkts[k].data_mut();
        let h = d.first_chunk::<HDR>()?;
        let payload = u16::from_be_bytes([h[PAYLOAD_LEN], h[PAYLOAD_LEN + 1]]) as u32;
        if HDR as u32 + payload > frame_max || clamp && syn_or_short(d) {
            return None;
        }
        let nh = if gateway != 0 {
            gateway
        } else {
            u128::from_be_bytes(h[DST..HDR].try_into().expect("16 bytes"))
        };
        if m6.nh != nh || m6.port != port {
            self.neighbour6(ctx, nh, port, m6)?;
        }
        // A route through a gateway sends every packet to the same next hop: later packets
        // on it take the run (a connected route's next hop is each destination, a
        // multipath route's the member of each packet's flow).
        m6.hop = if path.is_none() && gateway != 0 && m6.nh == nh && m6.port == port {
            id
        } else {
            NO_HOP
        };
        let d = pkts[k].data_mut();
        d[HOP_LIMIT] -= 1;
        d[..12].copy_from_slice(&m6.macs);
        if let (Some((g, j)), Some(t6)) = (path, self.table.v6()) {
            t6.group(g).count(self.worker, j);
        }
        Some(Verdict::Tx(port))
    }

    /// The MAC of next hop `nh` out of `port` into `m6` (what [`Forward::next_hop6`] does for
    /// a resolved neighbour, refresh included); `None` when the packet must take the general
    /// path: packets to `nh` are parked, or the neighbour is not resolved.
    #[inline(never)]
    fn neighbour6(
        &mut self,
        ctx: &mut StageCtx<'_>,
        nh: u128,
        port: u16,
        m6: &mut Memo6,
    ) -> Option<()> {
        if self.parked_for(NextHop::V6(nh)) {
            return None;
        }
        let Lookup::Hit { mac, refresh, slot } = self.shared.neigh6.lookup(nh, ctx.now) else {
            return None;
        };
        if refresh && self.shared.neigh6.claim_request(slot, ctx.now) {
            self.send_ns(ctx, port, nh, Some(mac));
        }
        let src = self.src_mac(port);
        m6.macs[..6].copy_from_slice(&mac);
        m6.macs[6..].copy_from_slice(&src);
        m6.born = ctx.now;
        // Memoised only when nothing is parked (packets to a next hop with parked packets
        // queue up behind them: every one of them must come through here).
        (m6.nh, m6.port) = if self.held.is_empty() && self.adopting.is_empty() {
            (nh, port)
        } else {
            (0, u16::MAX)
        };
        Some(())
    }
}

/// What the IPv6 run forwards packets with: the memo's next-hop id and addresses.
struct Run6 {
    hop: u32,
    macs: [u8; 12],
    frame_max: u32,
    /// MSS clamping between the burst's ingress port and the memo's egress port: TCP SYNs
    /// leave the run.
    clamp: bool,
}

impl Run6 {
    /// [`Run6::forward`] with the MTU and MSS clamping tests, out of line.
    #[inline(never)]
    fn forward_checking(
        &self,
        pkts: &mut [Mbuf],
        ids: &[u32],
        plain: u64,
        at: (usize, usize),
    ) -> usize {
        self.forward::<true>(pkts, ids, plain, at)
    }

    /// Forwards packets from `pkts[k]` on (`i`: where the run's `ids` and `plain` bits
    /// start) while they are plain, routed by the memo's hop (and, `CHECK`, within its MTU
    /// and no TCP SYN to clamp); returns where it stopped.
    #[inline(always)]
    fn forward<const CHECK: bool>(
        &self,
        pkts: &mut [Mbuf],
        ids: &[u32],
        plain: u64,
        (i, mut k): (usize, usize),
    ) -> usize {
        while let Some(m) = pkts.get_mut(k) {
            let j = k - i;
            if plain & (1 << j) == 0 || ids.get(j) != Some(&self.hop) {
                break;
            }
            let d = m.data_mut();
            if CHECK {
                let Some(h) = d.first_chunk::<HDR>() else {
                    break;
                };
                let payload = u16::from_be_bytes([h[PAYLOAD_LEN], h[PAYLOAD_LEN + 1]]) as u32;
                if HDR as u32 + payload > self.frame_max || self.clamp && syn_or_short(d) {
                    break;
                }
            }
            let Some(h) = d.first_chunk_mut::<HDR>() else {
                break;
            };
            h[HOP_LIMIT] -= 1;
            h[..12].copy_from_slice(&self.macs);
            k += 1;
        }
        k
    }
}

/// Whether a plain IPv6 frame is TCP with SYN set, or too short to say: the segments MSS
/// clamping looks at ([`Forward::clamp_mss6`] on the general path).
#[inline(always)]
fn syn_or_short(d: &[u8]) -> bool {
    d.get(NEXT_HEADER) == Some(&proto::TCP)
        && d.get(TCP_FLAGS).is_none_or(|f| f & tcp::flag::SYN != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(src: &str, dst: &str, nh: u8, hop: u8, payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; HDR + payload];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        ipv6::write_header(
            &mut f[14..],
            payload as u16,
            nh,
            hop,
            u128::from(src.parse::<std::net::Ipv6Addr>().unwrap()),
            u128::from(dst.parse::<std::net::Ipv6Addr>().unwrap()),
        );
        f
    }

    fn plain(f: &[u8]) -> bool {
        plain6(f.first_chunk().unwrap(), f.len())
    }

    #[test]
    fn plain_packets_are_the_ones_v6_forwards_without_a_question() {
        assert!(plain(&frame(
            "2001:db8::1",
            "2001:db8:1::9",
            proto::UDP,
            64,
            20
        )));
        assert!(plain(&frame(
            "2001:db8::1",
            "2001:db8:1::9",
            proto::TCP,
            2,
            20
        )));
        assert!(plain(&frame(
            "2001:db8::1",
            "2001:db8:1::9",
            proto::ICMPV6,
            2,
            8
        )));
        let no = |f: Vec<u8>| assert!(!plain(&f), "{f:02x?}");
        no(frame("2001:db8::1", "2001:db8:1::9", proto::UDP, 1, 20));
        no(frame("2001:db8::1", "2001:db8:1::9", proto::UDP, 0, 20));
        no(frame("2001:db8::1", "2001:db8:1::9", 0, 64, 20)); // hop-by-hop
        no(frame("2001:db8::1", "2001:db8:1::9", 44, 64, 20)); // fragment header
        no(frame("2001:db8::1", "2001:db8:1::9", 50, 64, 20)); // ESP
        no(frame("fe80::1", "2001:db8:1::9", proto::UDP, 64, 20));
        no(frame("febf::1", "2001:db8:1::9", proto::UDP, 64, 20));
        no(frame("2001:db8::1", "fe80::9", proto::UDP, 64, 20));
        no(frame("2001:db8::1", "ff02::1", proto::UDP, 64, 20));
        no(frame("ff0e::1", "2001:db8:1::9", proto::UDP, 64, 20));
        no(frame("::", "2001:db8:1::9", proto::UDP, 64, 20));
        no(frame("::1", "2001:db8:1::9", proto::UDP, 64, 20));
        no(frame("2001:db8::1", "::ffff:10.0.0.1", proto::UDP, 64, 20));
        // fec0::/10 (deprecated site-local) is not link-local, but fe00::/8 is left to the
        // general path whole; unique local addresses (fc00::/7) are plain.
        no(frame("fec0::1", "2001:db8:1::9", proto::UDP, 64, 20));
        assert!(plain(&frame("fd00::1", "fc00::9", proto::UDP, 64, 20)));
        assert!(plain(&frame("100::1", "fdff::9", proto::UDP, 64, 20)));
        let mut f = frame("2001:db8::1", "2001:db8:1::9", proto::UDP, 64, 20);
        f[0] = 0x33; // a group MAC
        no(f);
        let mut f = frame("2001:db8::1", "2001:db8:1::9", proto::UDP, 64, 20);
        f[14] = 0x40; // version 4
        no(f);
        let f = frame("2001:db8::1", "2001:db8:1::9", proto::UDP, 64, 20);
        assert!(
            !plain6(f.first_chunk().unwrap(), f.len() - 1),
            "payload past the frame"
        );
        let mut f = frame("2001:db8::1", "2001:db8:1::9", proto::UDP, 64, 20);
        f[12] = 0x08;
        f[13] = 0x00;
        no(f);
        assert!(is_ipv6(&frame("2001:db8::1", "2001:db8:1::9", 17, 64, 0)));
        assert!(!is_ipv6(&[0u8; 13]));
    }
}
