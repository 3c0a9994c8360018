//! Neighbour discovery for IPv6 over Ethernet (RFC 4861): the message view (router
//! solicitation and advertisement, neighbour solicitation and advertisement, redirect: ICMPv6
//! types 133..=137), the options (link-layer addresses, prefix information, MTU), the
//! validity checks of RFC 4861 sections 6.1, 7.1 and 8.1 as one function ([`validate`], each
//! failure with its drop reason), and builders for the messages a router sends (NS, NA, RA).
//!
//! Every message is sent with hop limit 255 and accepted only with it: a router never
//! forwards one, so 255 proves it came from the link (RFC 4861 section 3.1).

use pollfwd_pipeline::DropReason;

use super::checksum::{checksum, pseudo_header_v6};
use super::icmpv6::{self, msg};
use super::ipv6::{self, HEADER_LEN as IP6_HDR};
use super::{get16, get32, get128, proto, put16, put32, put128};

/// The hop limit of every neighbour discovery message.
pub const HOP_LIMIT: u8 = 255;

/// Lengths of the messages' fixed parts (ICMPv6 header included); options follow.
pub const RS_LEN: usize = 8;
pub const RA_LEN: usize = 16;
pub const NS_LEN: usize = 24;
pub const NA_LEN: usize = 24;
pub const REDIRECT_LEN: usize = 40;

/// Byte offsets in the messages (from the ICMPv6 type; RFC 4861 section 4).
pub mod field {
    use core::ops::Range;
    /// Router advertisement: current hop limit, M/O flags, router lifetime (s), reachable
    /// time (ms), retransmission timer (ms).
    pub const RA_CUR_HOP_LIMIT: usize = 4;
    pub const RA_FLAGS: usize = 5;
    pub const RA_ROUTER_LIFETIME: Range<usize> = 6..8;
    pub const RA_REACHABLE_TIME: Range<usize> = 8..12;
    pub const RA_RETRANS_TIMER: Range<usize> = 12..16;
    /// Neighbour advertisement: R/S/O flags.
    pub const NA_FLAGS: usize = 4;
    /// NS, NA, redirect: the target address.
    pub const TARGET: Range<usize> = 8..24;
    /// Redirect: the destination address.
    pub const REDIRECT_DEST: Range<usize> = 24..40;
}

/// Flag bits.
pub mod flags {
    /// Neighbour advertisement (RFC 4861 section 4.4): router, solicited, override.
    pub const NA_ROUTER: u8 = 0x80;
    pub const NA_SOLICITED: u8 = 0x40;
    pub const NA_OVERRIDE: u8 = 0x20;
    /// Router advertisement (section 4.2): managed address configuration, other.
    pub const RA_MANAGED: u8 = 0x80;
    pub const RA_OTHER: u8 = 0x40;
    /// Prefix information (section 4.6.2): on-link, autonomous address configuration.
    pub const PREFIX_ON_LINK: u8 = 0x80;
    pub const PREFIX_AUTONOMOUS: u8 = 0x40;
}

/// Option types (RFC 4861 section 4.6).
pub mod opt {
    pub const SOURCE_LL: u8 = 1;
    pub const TARGET_LL: u8 = 2;
    pub const PREFIX_INFO: u8 = 3;
    pub const REDIRECTED_HEADER: u8 = 4;
    pub const MTU: u8 = 5;
}

/// Lengths of the options the builders write: an Ethernet link-layer address, a prefix
/// information, an MTU.
pub const LL_OPT_LEN: usize = 8;
pub const PREFIX_OPT_LEN: usize = 32;
pub const MTU_OPT_LEN: usize = 8;

/// Where a message type's options start, for the five types.
#[inline]
pub fn options_offset(ty: u8) -> Option<usize> {
    match ty {
        msg::ROUTER_SOLICIT => Some(RS_LEN),
        msg::ROUTER_ADVERT => Some(RA_LEN),
        msg::NEIGHBOR_SOLICIT => Some(NS_LEN),
        msg::NEIGHBOR_ADVERT => Some(NA_LEN),
        msg::REDIRECT => Some(REDIRECT_LEN),
        _ => None,
    }
}

/// The options of a message, in order: each item is an option's type and its whole bytes
/// (type and length octets included), or [`DropReason::NdBadOption`] for an option of length
/// 0 or one running past the end, after which the iteration ends (RFC 4861 section 4.6:
/// such a packet is silently discarded).
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> OptionIter<'a> {
    pub fn new(opts: &'a [u8]) -> OptionIter<'a> {
        OptionIter { rest: opts }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<(u8, &'a [u8]), DropReason>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.rest;
        if r.is_empty() {
            return None;
        }
        let len = r.get(1).map_or(0, |&l| l as usize * 8);
        if len == 0 || len > r.len() {
            self.rest = &[];
            return Some(Err(DropReason::NdBadOption));
        }
        self.rest = &r[len..];
        Some(Ok((r[0], &r[..len])))
    }
}

/// What the options of a valid message carry (the last of each kind counts; a link-layer
/// address option of another length than 8 bytes is not Ethernet's and is ignored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub sll: Option<[u8; 6]>,
    pub tll: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    /// How many prefix information options (read them with [`OptionIter`] and [`Prefix::parse`]).
    pub prefixes: u8,
}

/// Reads the options `opts` (the bytes after a message's fixed part).
pub fn parse_options(opts: &[u8]) -> Result<Options, DropReason> {
    let mut o = Options::default();
    for item in OptionIter::new(opts) {
        let (ty, b) = item?;
        let mac = || <[u8; 6]>::try_from(&b[2..]).ok();
        match ty {
            opt::SOURCE_LL => o.sll = mac().or(o.sll),
            opt::TARGET_LL => o.tll = mac().or(o.tll),
            opt::MTU if b.len() == MTU_OPT_LEN => o.mtu = Some(get32(b, 4)),
            opt::PREFIX_INFO if b.len() == PREFIX_OPT_LEN => {
                o.prefixes = o.prefixes.saturating_add(1)
            }
            _ => {}
        }
    }
    Ok(o)
}

/// A prefix information option (RFC 4861 section 4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub prefix: u128,
    pub len: u8,
    /// L: the prefix is on-link; A: hosts may form addresses in it (RFC 4862).
    pub on_link: bool,
    pub autonomous: bool,
    /// Seconds; 0xffffffff is infinity.
    pub valid_lifetime: u32,
    pub preferred_lifetime: u32,
}

impl Prefix {
    /// A prefix information option's fields (`b`: the whole option, as [`OptionIter`]
    /// yields it), or `None` when it is not one.
    pub fn parse(ty: u8, b: &[u8]) -> Option<Prefix> {
        if ty != opt::PREFIX_INFO || b.len() != PREFIX_OPT_LEN {
            return None;
        }
        Some(Prefix {
            len: b[2],
            on_link: b[3] & flags::PREFIX_ON_LINK != 0,
            autonomous: b[3] & flags::PREFIX_AUTONOMOUS != 0,
            valid_lifetime: get32(b, 4),
            preferred_lifetime: get32(b, 8),
            prefix: get128(b, 16),
        })
    }

    /// Writes the option into `b` (32 bytes).
    fn write(&self, b: &mut [u8]) {
        b[..PREFIX_OPT_LEN].fill(0);
        b[0] = opt::PREFIX_INFO;
        b[1] = (PREFIX_OPT_LEN / 8) as u8;
        b[2] = self.len;
        b[3] = if self.on_link {
            flags::PREFIX_ON_LINK
        } else {
            0
        } | if self.autonomous {
            flags::PREFIX_AUTONOMOUS
        } else {
            0
        };
        put32(b, 4, self.valid_lifetime);
        put32(b, 8, self.preferred_lifetime);
        put128(b, 16, self.prefix);
    }
}

/// A valid neighbour discovery message, as [`validate`] read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    RouterSolicit {
        sll: Option<[u8; 6]>,
    },
    RouterAdvert {
        cur_hop_limit: u8,
        /// M and O bits ([`flags::RA_MANAGED`], [`flags::RA_OTHER`]).
        flags: u8,
        router_lifetime: u16,
        reachable_time: u32,
        retrans_timer: u32,
        opts: Options,
    },
    NeighborSolicit {
        target: u128,
        sll: Option<[u8; 6]>,
    },
    NeighborAdvert {
        target: u128,
        router: bool,
        solicited: bool,
        override_: bool,
        tll: Option<[u8; 6]>,
    },
    Redirect {
        target: u128,
        dest: u128,
        tll: Option<[u8; 6]>,
    },
}

/// Whether the packet [`ipv6::validate`] read as `info` is neighbour discovery a node accepts
/// (RFC 4861 6.1, 7.1: router and neighbour solicitation and advertisement, redirect, hop
/// limit 255, unfragmented): what stages before `forward` pass untouched, as they pass ARP.
/// The full checks are [`validate`]'s.
#[inline]
pub fn is_nd(info: &ipv6::Info) -> bool {
    info.upper == proto::ICMPV6
        && info.frag == super::ipv4::Frag::No
        && info.hop_limit == HOP_LIMIT
        && (msg::ROUTER_SOLICIT..=msg::REDIRECT).contains(&((info.dport >> 8) as u8))
}

/// The validity checks of RFC 4861 (sections 6.1.1, 6.1.2, 7.1.1, 7.1.2, 8.1) on the IPv6
/// packet `l3` that [`ipv6::validate`] accepted as `ip`. Every message must have:
/// - ICMPv6 as upper layer and a type in 133..=137 (`nd_invalid`: not neighbour discovery);
/// - IPv6 hop limit 255 (`nd_bad_hop_limit`: not from the link);
/// - no fragment header (RFC 6980 section 5; `nd_invalid`);
/// - a correct ICMPv6 checksum (`icmpv6_bad_checksum`);
/// - code 0 and at least its fixed length: 8 (RS), 16 (RA), 24 (NS, NA), 40 (redirect)
///   bytes (`nd_invalid`);
/// - options of non-zero length within the message (`nd_bad_option`);
///
/// and by type (`nd_invalid`): RS: no source link-layer address option from the unspecified
/// address; RA and redirect: a link-local source; NS: a unicast target, and from the
/// unspecified address (duplicate address detection) a solicited-node multicast destination
/// and no source link-layer address option; NA: a unicast target, the solicited flag clear
/// when sent to a multicast group; redirect: a unicast destination, a target that is
/// link-local or the destination itself.
pub fn validate(l3: &[u8], ip: &ipv6::Info) -> Result<Message, DropReason> {
    let start = ip.upper_off as usize;
    let end = IP6_HDR + ip.payload_len as usize;
    let m = match l3.get(start..end) {
        Some(m) if ip.upper == proto::ICMPV6 && m.len() >= 4 => m,
        _ => return Err(DropReason::NdInvalid),
    };
    let ty = m[0];
    let Some(fixed) = options_offset(ty) else {
        return Err(DropReason::NdInvalid);
    };
    if ip.hop_limit != HOP_LIMIT {
        return Err(DropReason::NdBadHopLimit);
    }
    if ip.has_frag_header {
        return Err(DropReason::NdInvalid);
    }
    if checksum(
        m,
        pseudo_header_v6(ip.src, ip.dst, proto::ICMPV6, m.len() as u32),
    ) != 0
    {
        return Err(DropReason::Icmpv6BadChecksum);
    }
    if m[1] != 0 || m.len() < fixed {
        return Err(DropReason::NdInvalid);
    }
    let o = parse_options(&m[fixed..])?;
    let ok = |c: bool| {
        if c {
            Ok(())
        } else {
            Err(DropReason::NdInvalid)
        }
    };
    let unspec = ipv6::is_unspecified(ip.src);
    let target = || get128(m, field::TARGET.start);
    Ok(match ty {
        msg::ROUTER_SOLICIT => {
            ok(!(unspec && o.sll.is_some()))?;
            Message::RouterSolicit { sll: o.sll }
        }
        msg::ROUTER_ADVERT => {
            ok(ipv6::is_link_local(ip.src))?;
            Message::RouterAdvert {
                cur_hop_limit: m[field::RA_CUR_HOP_LIMIT],
                flags: m[field::RA_FLAGS] & (flags::RA_MANAGED | flags::RA_OTHER),
                router_lifetime: get16(m, field::RA_ROUTER_LIFETIME.start),
                reachable_time: get32(m, field::RA_REACHABLE_TIME.start),
                retrans_timer: get32(m, field::RA_RETRANS_TIMER.start),
                opts: o,
            }
        }
        msg::NEIGHBOR_SOLICIT => {
            ok(!ipv6::is_multicast(target()))?;
            ok(!unspec || (ipv6::is_solicited_node(ip.dst) && o.sll.is_none()))?;
            Message::NeighborSolicit {
                target: target(),
                sll: o.sll,
            }
        }
        msg::NEIGHBOR_ADVERT => {
            let f = m[field::NA_FLAGS];
            ok(!ipv6::is_multicast(target()))?;
            ok(!(ipv6::is_multicast(ip.dst) && f & flags::NA_SOLICITED != 0))?;
            Message::NeighborAdvert {
                target: target(),
                router: f & flags::NA_ROUTER != 0,
                solicited: f & flags::NA_SOLICITED != 0,
                override_: f & flags::NA_OVERRIDE != 0,
                tll: o.tll,
            }
        }
        _ => {
            let dest = get128(m, field::REDIRECT_DEST.start);
            ok(ipv6::is_link_local(ip.src) && !ipv6::is_multicast(dest))?;
            ok(ipv6::is_link_local(target()) || target() == dest)?;
            Message::Redirect {
                target: target(),
                dest,
                tll: o.tll,
            }
        }
    })
}

/// Writes the IPv6 header (hop limit 255) before an ND message of `len` bytes at
/// `b[40..40 + len]`, fills the ICMPv6 checksum, and returns the packet's length.
fn finish(b: &mut [u8], src: u128, dst: u128, len: usize) -> usize {
    ipv6::write_header(b, len as u16, proto::ICMPV6, HOP_LIMIT, src, dst);
    icmpv6::Packet::new_unchecked(&mut b[IP6_HDR..IP6_HDR + len]).fill_checksum(src, dst);
    IP6_HDR + len
}

/// Writes a link-layer address option of type `ty` at the start of `b` (8 bytes).
fn write_ll(b: &mut [u8], ty: u8, mac: [u8; 6]) {
    b[0] = ty;
    b[1] = 1;
    b[2..8].copy_from_slice(&mac);
}

/// Writes a neighbour solicitation for `target` (RFC 4861 section 4.3) as a complete IPv6
/// packet into `buf` and returns its length, 0 when `buf` is too short (72 bytes with `sll`,
/// 64 without). `dst`: the target's solicited-node address ([`ipv6::solicited_node`]) to
/// resolve it, the target itself to probe its reachability (section 7.2.2); `sll`: the
/// sender's link-layer address option, which must be absent when `src` is unspecified.
pub fn write_ns(buf: &mut [u8], src: u128, dst: u128, target: u128, sll: Option<[u8; 6]>) -> usize {
    let len = NS_LEN + if sll.is_some() { LL_OPT_LEN } else { 0 };
    let Some(b) = buf.get_mut(..IP6_HDR + len) else {
        return 0;
    };
    let m = &mut b[IP6_HDR..];
    m.fill(0);
    m[0] = msg::NEIGHBOR_SOLICIT;
    put128(m, field::TARGET.start, target);
    if let Some(mac) = sll {
        write_ll(&mut m[NS_LEN..], opt::SOURCE_LL, mac);
    }
    finish(b, src, dst, len)
}

/// Writes a neighbour advertisement for `target` with the target link-layer address option
/// `tll` and the router, solicited and override flags (RFC 4861 section 4.4, 7.2.4) as a
/// complete IPv6 packet into `buf` and returns its length (72), 0 when `buf` is shorter.
#[allow(clippy::too_many_arguments)]
pub fn write_na(
    buf: &mut [u8],
    src: u128,
    dst: u128,
    target: u128,
    tll: [u8; 6],
    router: bool,
    solicited: bool,
    override_: bool,
) -> usize {
    let len = NA_LEN + LL_OPT_LEN;
    let Some(b) = buf.get_mut(..IP6_HDR + len) else {
        return 0;
    };
    let m = &mut b[IP6_HDR..];
    m.fill(0);
    m[0] = msg::NEIGHBOR_ADVERT;
    m[field::NA_FLAGS] = if router { flags::NA_ROUTER } else { 0 }
        | if solicited { flags::NA_SOLICITED } else { 0 }
        | if override_ { flags::NA_OVERRIDE } else { 0 };
    put128(m, field::TARGET.start, target);
    write_ll(&mut m[NA_LEN..], opt::TARGET_LL, tll);
    finish(b, src, dst, len)
}

/// A router advertisement's fixed fields and single options (RFC 4861 section 4.2; the
/// defaults of section 6.2.1 are the caller's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ra {
    /// The hop limit hosts should use, 0 for unspecified.
    pub cur_hop_limit: u8,
    pub managed: bool,
    pub other: bool,
    /// Seconds, 0: not a default router.
    pub router_lifetime: u16,
    /// Milliseconds, 0 for unspecified.
    pub reachable_time: u32,
    pub retrans_timer: u32,
    /// The source link-layer address option.
    pub sll: Option<[u8; 6]>,
    /// The MTU option.
    pub mtu: Option<u32>,
}

/// Writes a router advertisement (options in the order source link-layer address, MTU,
/// prefix information) as a complete IPv6 packet into `buf` and returns its length, 0 when
/// `buf` is too short. `src` must be the interface's link-local address (section 6.1.2);
/// `dst` all-nodes ([`ipv6::ALL_NODES`]) or the soliciting host.
pub fn write_ra(buf: &mut [u8], src: u128, dst: u128, ra: &Ra, prefixes: &[Prefix]) -> usize {
    let len = RA_LEN
        + if ra.sll.is_some() { LL_OPT_LEN } else { 0 }
        + if ra.mtu.is_some() { MTU_OPT_LEN } else { 0 }
        + prefixes.len() * PREFIX_OPT_LEN;
    let Some(b) = buf.get_mut(..IP6_HDR + len) else {
        return 0;
    };
    let m = &mut b[IP6_HDR..];
    m.fill(0);
    m[0] = msg::ROUTER_ADVERT;
    m[field::RA_CUR_HOP_LIMIT] = ra.cur_hop_limit;
    m[field::RA_FLAGS] =
        if ra.managed { flags::RA_MANAGED } else { 0 } | if ra.other { flags::RA_OTHER } else { 0 };
    put16(m, field::RA_ROUTER_LIFETIME.start, ra.router_lifetime);
    put32(m, field::RA_REACHABLE_TIME.start, ra.reachable_time);
    put32(m, field::RA_RETRANS_TIMER.start, ra.retrans_timer);
    let mut at = RA_LEN;
    if let Some(mac) = ra.sll {
        write_ll(&mut m[at..], opt::SOURCE_LL, mac);
        at += LL_OPT_LEN;
    }
    if let Some(mtu) = ra.mtu {
        m[at] = opt::MTU;
        m[at + 1] = 1;
        put32(m, at + 4, mtu);
        at += MTU_OPT_LEN;
    }
    for p in prefixes {
        p.write(&mut m[at..]);
        at += PREFIX_OPT_LEN;
    }
    finish(b, src, dst, len)
}

#[cfg(test)]
mod tests;
