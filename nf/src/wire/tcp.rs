//! TCP (RFC 793): the header view, as far as pollfwd reads it (ports, flags, checksum), and
//! the maximum segment size option (RFC 9293 section 3.7.1) that MSS clamping lowers.

use super::checksum::{self, Delta, pseudo_header, pseudo_header_v6};
use super::{get16, get32, put16};

/// The fixed header, without options.
pub const HEADER_LEN: usize = 20;

/// Byte offsets in the TCP header.
pub mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const CHECKSUM: Range<usize> = 16..18;
}

/// TCP flag bits (RFC 793).
pub mod flag {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// TCP option kinds (RFC 9293 section 3.2) as the MSS walk knows them.
pub mod option {
    /// End of the option list.
    pub const END: u8 = 0;
    /// No-operation (padding between options).
    pub const NOP: u8 = 1;
    /// Maximum segment size: kind, length 4, a 16-bit value.
    pub const MSS: u8 = 2;
    /// The length byte of a well-formed MSS option.
    pub const MSS_LEN: u8 = 4;
}

/// Walks the option list `opts` (the header bytes after the fixed 20) and calls `f` with the
/// offset in `opts` of each MSS option's value. Stops at the end-of-list option or the end of
/// the header. Returns false, having stopped, for a malformed list: an option other than
/// END/NOP without room for its length byte, a length below 2 or past the header, an MSS
/// option whose length is not 4 (RFC 9293 section 3.2 leaves a receiver to drop such a
/// segment; a router passes it on as it is).
fn walk_options(opts: &[u8], mut f: impl FnMut(usize)) -> bool {
    let mut i = 0;
    while let Some(&kind) = opts.get(i) {
        match kind {
            option::END => break,
            option::NOP => i += 1,
            _ => {
                let Some(&len) = opts.get(i + 1) else {
                    return false;
                };
                let len = len as usize;
                if len < 2 || i + len > opts.len() {
                    return false;
                }
                if kind == option::MSS {
                    if len != option::MSS_LEN as usize {
                        return false;
                    }
                    f(i + 2);
                }
                i += len;
            }
        }
    }
    true
}

/// A view of a TCP segment in a byte buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline(always)]
    pub fn new_unchecked(buf: T) -> Packet<T> {
        Packet { buf }
    }

    /// A view of a buffer that holds at least the 20-byte fixed header.
    #[inline(always)]
    pub fn new_checked(buf: T) -> Option<Packet<T>> {
        (buf.as_ref().len() >= HEADER_LEN).then_some(Packet { buf })
    }

    #[inline(always)]
    pub fn src_port(&self) -> u16 {
        get16(self.buf.as_ref(), field::SRC_PORT.start)
    }

    #[inline(always)]
    pub fn dst_port(&self) -> u16 {
        get16(self.buf.as_ref(), field::DST_PORT.start)
    }

    #[inline(always)]
    pub fn seq(&self) -> u32 {
        get32(self.buf.as_ref(), field::SEQ.start)
    }

    #[inline(always)]
    pub fn ack(&self) -> u32 {
        get32(self.buf.as_ref(), field::ACK.start)
    }

    /// Header length in bytes (data offset * 4).
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        (self.buf.as_ref()[field::DATA_OFF] >> 4) as usize * 4
    }

    /// The flag bits ([`flag`]).
    #[inline(always)]
    pub fn flags(&self) -> u8 {
        self.buf.as_ref()[field::FLAGS]
    }

    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        get16(self.buf.as_ref(), field::CHECKSUM.start)
    }

    /// The option bytes: the header after the fixed 20 bytes, if the data offset is sane and
    /// the whole header is in the buffer.
    #[inline]
    fn options(&self) -> Option<&[u8]> {
        let hl = self.header_len();
        let b = self.buf.as_ref();
        (hl >= HEADER_LEN && hl <= b.len()).then(|| &b[HEADER_LEN..hl])
    }

    /// The value of the maximum segment size option: `None` when the segment has none, its
    /// header is cut short or its option list is malformed (see [`Packet::clamp_mss`]).
    pub fn mss(&self) -> Option<u16> {
        let opts = self.options()?;
        let mut at = None;
        walk_options(opts, |o| at = Some(o)).then_some(())?;
        at.map(|o| get16(opts, o))
    }

    /// Whether the checksum over the segment (the whole buffer) and the pseudo-header of
    /// `src` -> `dst` is right.
    pub fn verify_checksum(&self, src: u32, dst: u32) -> bool {
        let b = self.buf.as_ref();
        checksum::checksum(
            b,
            pseudo_header(src, dst, super::proto::TCP, b.len() as u16),
        ) == 0
    }

    /// Over IPv6: whether the checksum with the IPv6 pseudo-header of `src` -> `dst` (RFC
    /// 8200 section 8.1) is right.
    pub fn verify_checksum_v6(&self, src: u128, dst: u128) -> bool {
        let b = self.buf.as_ref();
        checksum::checksum(
            b,
            pseudo_header_v6(src, dst, super::proto::TCP, b.len() as u32),
        ) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buf.as_mut(), field::SRC_PORT.start, v);
    }

    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buf.as_mut(), field::DST_PORT.start, v);
    }

    /// Sets the header length in bytes (a multiple of 4, 20..=60).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let b = self.buf.as_mut();
        b[field::DATA_OFF] = ((len / 4) as u8) << 4 | (b[field::DATA_OFF] & 0x0f);
    }

    #[inline]
    pub fn set_flags(&mut self, v: u8) {
        self.buf.as_mut()[field::FLAGS] = v;
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buf.as_mut(), field::CHECKSUM.start, v);
    }

    /// MSS clamping (what `iptables -j TCPMSS --set-mss` and Cisco's `ip tcp adjust-mss` do):
    /// lowers every maximum segment size option above `max` to `max` and updates the checksum
    /// incrementally (RFC 1624), so a segment whose checksum was wrong stays wrong. Returns the
    /// largest value it replaced, `None` if nothing changed: no MSS option (none is ever added),
    /// values already at most `max`, a header cut short by the buffer, or a malformed option
    /// list (nothing is touched then). The caller decides which segments (SYNs) to clamp.
    pub fn clamp_mss(&mut self, max: u16) -> Option<u16> {
        let hl = self.header_len();
        let b = self.buf.as_mut();
        if hl < HEADER_LEN || hl > b.len() {
            return None;
        }
        // Walk the whole list first: a malformed one is left as it is, even after a good MSS.
        // 40 option bytes hold at most 10 MSS options.
        let mut at = [0u8; 10];
        let mut n = 0;
        let ok = walk_options(&b[HEADER_LEN..hl], |o| {
            at[n] = (HEADER_LEN + o) as u8;
            n += 1;
        });
        if !ok {
            return None;
        }
        let mut delta = Delta::ZERO;
        let mut old_max = None;
        for &o in &at[..n] {
            let o = o as usize;
            let old = get16(b, o);
            if old > max {
                put16(b, o, max);
                // The checksum sums 16-bit words at even offsets of the segment: a value at an
                // odd offset straddles two of them and counts byte-swapped (RFC 1071 2(B)).
                delta = if o.is_multiple_of(2) {
                    delta.word(old, max)
                } else {
                    delta.word(old.swap_bytes(), max.swap_bytes())
                };
                old_max = old_max.max(Some(old));
            }
        }
        if old_max.is_some() {
            let c = delta.apply(get16(b, field::CHECKSUM.start));
            put16(b, field::CHECKSUM.start, c);
        }
        old_max
    }

    /// Computes and writes the checksum over the segment (the whole buffer).
    pub fn fill_checksum(&mut self, src: u32, dst: u32) {
        self.set_checksum(0);
        let b = self.buf.as_ref();
        let c = checksum::checksum(
            b,
            pseudo_header(src, dst, super::proto::TCP, b.len() as u16),
        );
        self.set_checksum(c);
    }

    /// Over IPv6: computes and writes the checksum with the IPv6 pseudo-header.
    pub fn fill_checksum_v6(&mut self, src: u128, dst: u128) {
        self.set_checksum(0);
        let b = self.buf.as_ref();
        let c = checksum::checksum(
            b,
            pseudo_header_v6(src, dst, super::proto::TCP, b.len() as u32),
        );
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_round_trip_and_checksum() {
        let mut b = [0u8; 24];
        b[4..12].copy_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        let mut t = Packet::new_checked(&mut b[..]).unwrap();
        t.set_src_port(40000);
        t.set_dst_port(443);
        t.set_header_len(20);
        t.set_flags(flag::SYN | flag::ACK);
        t.fill_checksum(0x0a00_0001, 0xc000_0209);
        assert_eq!(
            (t.src_port(), t.dst_port(), t.seq(), t.ack()),
            (40000, 443, 1, 2)
        );
        assert_eq!((t.header_len(), t.flags()), (20, 0x12));
        assert!(t.verify_checksum(0x0a00_0001, 0xc000_0209));
        assert!(!t.verify_checksum(0x0a00_0001, 0xc000_0208));
        assert_eq!(b[12], 0x50);
        assert!(Packet::new_checked(&b[..19]).is_none());
    }

    use crate::wire::checksum::tests::Rng;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{IpAddress, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber};

    const SRC: [u8; 4] = [10, 0, 0, 2];
    const DST: [u8; 4] = [203, 0, 113, 5];

    fn addrs() -> (IpAddress, IpAddress) {
        (IpAddress::v4(10, 0, 0, 2), IpAddress::v4(203, 0, 113, 5))
    }

    /// A SYN (or SYN-ACK) as a host stack writes it, by smoltcp: MSS, window scale, SACK
    /// permitted, timestamps.
    fn smoltcp_syn(mss: Option<u16>, ack: bool) -> Vec<u8> {
        let repr = TcpRepr {
            src_port: 40000,
            dst_port: 443,
            control: TcpControl::Syn,
            seq_number: TcpSeqNumber(0x1234_5678),
            ack_number: ack.then_some(TcpSeqNumber(7)),
            window_len: 64240,
            window_scale: Some(7),
            max_seg_size: mss,
            sack_permitted: true,
            sack_ranges: [None; 3],
            timestamp: Some(smoltcp::wire::TcpTimestampRepr::new(0xdead_beef, 0)),
            payload: &[],
        };
        let mut b = vec![0u8; repr.buffer_len()];
        let (s, d) = addrs();
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut b[..]),
            &s,
            &d,
            &ChecksumCapabilities::default(),
        );
        b
    }

    /// A SYN with these raw option bytes (a multiple of 4) and payload, checksum by smoltcp.
    fn raw_syn(opts: &[u8], payload: &[u8]) -> Vec<u8> {
        let hl = 20 + opts.len();
        let mut b = vec![0u8; hl + payload.len()];
        b[0..4].copy_from_slice(&[0x9c, 0x40, 0x01, 0xbb]);
        b[12] = ((hl / 4) as u8) << 4;
        b[13] = flag::SYN;
        b[20..hl].copy_from_slice(opts);
        b[hl..].copy_from_slice(payload);
        let (s, d) = addrs();
        TcpPacket::new_unchecked(&mut b[..]).fill_checksum(&s, &d);
        b
    }

    /// smoltcp's view: checksum right, and the parsed segment.
    fn smoltcp_parse(b: &[u8]) -> TcpRepr<'_> {
        let (s, d) = addrs();
        let p = TcpPacket::new_checked(b).unwrap();
        assert!(p.verify_checksum(&s, &d), "checksum by smoltcp");
        TcpRepr::parse(&p, &s, &d, &ChecksumCapabilities::default()).unwrap()
    }

    fn sender() -> (u32, u32) {
        (u32::from_be_bytes(SRC), u32::from_be_bytes(DST))
    }

    #[test]
    fn a_syn_from_a_host_stack_is_clamped_and_its_checksum_stays_right() {
        for ack in [false, true] {
            let mut b = smoltcp_syn(Some(1460), ack);
            assert_eq!(Packet::new_unchecked(&b[..]).mss(), Some(1460));
            let orig = b.clone();
            let before = smoltcp_parse(&orig);
            assert_eq!(
                Packet::new_unchecked(&mut b[..]).clamp_mss(1360),
                Some(1460)
            );
            let after = smoltcp_parse(&b);
            assert_eq!(after.max_seg_size, Some(1360));
            // Nothing else changed: the other options, the ports, the sequence numbers.
            assert_eq!(
                TcpRepr {
                    max_seg_size: Some(1460),
                    ..after
                },
                before
            );
            let (s, d) = sender();
            assert!(Packet::new_unchecked(&b[..]).verify_checksum(s, d));
            // The incremental update equals smoltcp's full recomputation, bit for bit.
            let mut full = b.clone();
            let (sa, da) = addrs();
            TcpPacket::new_unchecked(&mut full[..]).fill_checksum(&sa, &da);
            assert_eq!(full, b);
        }
    }

    #[test]
    fn a_smaller_or_equal_mss_and_a_syn_without_one_are_untouched() {
        for (mss, max) in [(Some(1200), 1360), (Some(1360), 1360), (None, 1360)] {
            let mut b = smoltcp_syn(mss, false);
            let orig = b.clone();
            assert_eq!(Packet::new_unchecked(&mut b[..]).clamp_mss(max), None);
            assert_eq!(b, orig, "{mss:?}");
            assert_eq!(smoltcp_parse(&b).max_seg_size, mss);
        }
        // No options at all.
        let mut b = raw_syn(&[], b"data");
        let orig = b.clone();
        assert_eq!(Packet::new_unchecked(&mut b[..]).clamp_mss(536), None);
        assert_eq!(b, orig);
    }

    #[test]
    fn an_mss_at_an_odd_offset_keeps_the_checksum_right() {
        // NOP, MSS 8960 (value at header offset 23), NOP x3: the value straddles two words.
        for payload in [&b""[..], b"x", b"odd length payload!"] {
            let mut b = raw_syn(&[1, 2, 4, 0x23, 0x00, 1, 1, 1], payload);
            assert_eq!(Packet::new_unchecked(&b[..]).mss(), Some(0x2300));
            assert_eq!(
                Packet::new_unchecked(&mut b[..]).clamp_mss(1400),
                Some(0x2300)
            );
            assert_eq!(smoltcp_parse(&b).max_seg_size, Some(1400));
            assert_eq!(b[23..25], 1400u16.to_be_bytes());
        }
    }

    #[test]
    fn every_mss_option_of_a_segment_is_clamped() {
        let mut b = raw_syn(&[2, 4, 0x05, 0xb4, 1, 2, 4, 0x23, 0x00, 0, 0, 0], b"");
        assert_eq!(
            Packet::new_unchecked(&mut b[..]).clamp_mss(1000),
            Some(0x2300)
        );
        assert_eq!(b[22..24], 1000u16.to_be_bytes());
        assert_eq!(b[27..29], 1000u16.to_be_bytes());
        smoltcp_parse(&b);
    }

    #[test]
    fn malformed_or_ended_option_lists_are_left_untouched() {
        let cases: [&[u8]; 9] = [
            // An MSS after the end-of-list option is no option.
            &[0, 2, 4, 0x23, 0x00, 0, 0, 0],
            // Length 0 and 1 (would loop or step backwards).
            &[8, 0, 2, 4, 0x23, 0x00, 0, 0],
            &[8, 1, 2, 4, 0x23, 0x00, 0, 0],
            // An option running past the header.
            &[2, 4, 0x23, 0x00, 8, 10, 0, 0],
            // A good MSS followed by garbage: the whole list is refused.
            &[2, 4, 0x23, 0x00, 1, 1, 1, 3],
            // MSS with length 3 and 5.
            &[2, 3, 0x23, 1, 1, 1, 1, 1],
            &[2, 5, 0x23, 0x00, 1, 1, 1, 1],
            // A kind without room for its length byte.
            &[1, 1, 1, 2],
            // An unknown option whose length runs exactly to the end, then nothing: fine,
            // but there is no MSS.
            &[30, 8, 2, 4, 0x23, 0x00, 0, 0],
        ];
        for opts in cases {
            let mut b = raw_syn(opts, b"");
            let orig = b.clone();
            assert_eq!(Packet::new_unchecked(&b[..]).mss(), None, "{opts:?}");
            assert_eq!(
                Packet::new_unchecked(&mut b[..]).clamp_mss(536),
                None,
                "{opts:?}"
            );
            assert_eq!(b, orig, "{opts:?}");
        }
        // A data offset below 5, or a header longer than the buffer.
        let mut b = raw_syn(&[2, 4, 0x23, 0x00], b"");
        for off in [0u8, 4 << 4, 15 << 4] {
            b[12] = off;
            let orig = b.clone();
            assert_eq!(Packet::new_unchecked(&mut b[..]).clamp_mss(536), None);
            assert_eq!(b, orig);
        }
        let mut b = raw_syn(&[2, 4, 0x23, 0x00], b"");
        assert_eq!(Packet::new_unchecked(&mut b[..23]).clamp_mss(536), None);
    }

    #[test]
    fn random_segments_match_a_full_recomputation() {
        let mut r = Rng::new(0x5eed);
        let (sa, da) = addrs();
        for _ in 0..2000 {
            let mss = r.next() as u16;
            let max = 536 + (r.next() % (65495 - 536 + 1)) as u16;
            let pad = (r.next() % 4) as usize;
            let mut opts = vec![1u8; pad];
            opts.extend_from_slice(&[2, 4]);
            opts.extend_from_slice(&mss.to_be_bytes());
            opts.resize(opts.len().div_ceil(4) * 4, 0);
            let payload: Vec<u8> = (0..r.next() % 40).map(|_| r.next() as u8).collect();
            let mut b = raw_syn(&opts, &payload);
            let got = Packet::new_unchecked(&mut b[..]).clamp_mss(max);
            assert_eq!(got, (mss > max).then_some(mss));
            assert_eq!(smoltcp_parse(&b).max_seg_size, Some(mss.min(max)));
            let mut full = b.clone();
            TcpPacket::new_unchecked(&mut full[..]).fill_checksum(&sa, &da);
            assert_eq!(full[16..18], b[16..18], "mss {mss} max {max} pad {pad}");
        }
    }
}
