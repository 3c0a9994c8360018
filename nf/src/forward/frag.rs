//! IPv4 fragmentation on egress (RFC 791 section 3.2 "Fragmentation and Reassembly", RFC 1812
//! section 5.2.6), on byte slices: the forward stage keeps the original mbuf as the first
//! fragment (its header rewritten and its length cut, in place) and copies every later
//! fragment into a fresh single-segment mbuf.
//!
//! Every fragment carries a copy of the header: the first keeps all the options, the later
//! ones only the options whose copy bit is set (RFC 791 section 3.1, "Options"), padded with
//! end-of-list to a multiple of 4 bytes. Fragment data is a multiple of 8 bytes except in the
//! last fragment; the offsets and the more-fragments flag carry those of a datagram that is a
//! fragment already (refragmentation: its last piece keeps its MF, the others set it); the
//! total length and the header checksum are recomputed; no fragment exceeds the MTU.

use dpdk::{Mbuf, Mempool};
use pollfwd_pipeline::DropReason;

use crate::wire::{ether, ipv4};

/// Largest IPv4 header (IHL 15).
pub const MAX_HEADER: usize = 60;

/// How a datagram is cut for an MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Header length of the first fragment (the original's).
    pub hl: usize,
    /// Header length of the later fragments (fixed header and copied options).
    pub hl_rest: usize,
    /// Data bytes in the first fragment (a multiple of 8).
    pub first: usize,
    /// Data bytes in each later fragment but the last (a multiple of 8).
    pub rest: usize,
    /// Data bytes of the datagram.
    pub data: usize,
    /// Number of fragments.
    pub count: usize,
}

impl Plan {
    /// (data offset, data length) of fragment `k` (0-based) within the datagram's data.
    #[inline]
    pub fn piece(&self, k: usize) -> (usize, usize) {
        if k == 0 {
            return (0, self.first.min(self.data));
        }
        let off = self.first + (k - 1) * self.rest;
        (off, self.rest.min(self.data - off))
    }
}

/// The options of `opts` (a header's bytes after the fixed 20) whose copy bit is set, written
/// to `out` padded with zeros (end of option list) to a multiple of 4; returns that length.
/// RFC 791: end-of-list (0) ends the list, no-operation (1) is one byte; every other option
/// has a length byte. A malformed list stops the copy there.
pub fn copied_options(opts: &[u8], out: &mut [u8; MAX_HEADER - ipv4::MIN_HEADER_LEN]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < opts.len() {
        let t = opts[i];
        match t {
            0 => break,
            1 => i += 1,
            _ => {
                let Some(&len) = opts.get(i + 1) else {
                    break;
                };
                let len = len as usize;
                if len < 2 || i + len > opts.len() {
                    break;
                }
                if t & 0x80 != 0 {
                    out[n..n + len].copy_from_slice(&opts[i..i + len]);
                    n += len;
                }
                i += len;
            }
        }
    }
    let padded = n.div_ceil(4) * 4;
    out[n..padded].fill(0);
    padded
}

/// The plan for the IPv4 datagram `ip` (header and data, `total_len` bytes, valid) on a link
/// of `mtu` bytes, with `hl_rest` the later fragments' header length; `None` if it cannot be
/// cut (an MTU below the header plus 8 bytes of data). A datagram that fits gets one piece.
pub fn plan(hl: usize, hl_rest: usize, total: usize, mtu: usize) -> Option<Plan> {
    let data = total.checked_sub(hl)?;
    let first = mtu.checked_sub(hl)? & !7;
    let rest = mtu.checked_sub(hl_rest)? & !7;
    if first == 0 || rest == 0 {
        return None;
    }
    let count = if data <= first {
        1
    } else {
        1 + (data - first).div_ceil(rest)
    };
    Some(Plan {
        hl,
        hl_rest,
        first,
        rest,
        data,
        count,
    })
}

/// Writes fragment `k` >= 1 of the datagram `ip` (valid header, `plan.hl + plan.data` bytes)
/// into `out` (at least `plan.hl_rest + piece` bytes): the fixed header, the copied options
/// `opts` (`plan.hl_rest - 20` bytes from [`copied_options`]) and the piece of data, total
/// length, offset, MF and checksum set. Returns the fragment's length.
pub fn write_later(ip: &[u8], plan: &Plan, opts: &[u8], k: usize, out: &mut [u8]) -> usize {
    let (off, len) = plan.piece(k);
    let fixed = ipv4::MIN_HEADER_LEN;
    out[..fixed].copy_from_slice(&ip[..fixed]);
    out[fixed..plan.hl_rest].copy_from_slice(&opts[..plan.hl_rest - fixed]);
    out[plan.hl_rest..plan.hl_rest + len].copy_from_slice(&ip[plan.hl + off..plan.hl + off + len]);
    let o = ipv4::Packet::new_unchecked(ip);
    let last = k + 1 == plan.count;
    let ff = frag_word(o.flags_frag(), off, last);
    let mut f = ipv4::Packet::new_unchecked(&mut out[..plan.hl_rest]);
    f.set_version_and_header_len(plan.hl_rest);
    f.set_total_len((plan.hl_rest + len) as u16);
    f.set_flags_frag(ff);
    f.fill_checksum();
    plan.hl_rest + len
}

/// Rewrites the header of `ip` into that of its first fragment (all options kept): total
/// length, MF, checksum. Returns the first fragment's length (the caller cuts the buffer).
pub fn make_first(ip: &mut [u8], plan: &Plan) -> usize {
    let len = plan.hl + plan.first;
    let mut f = ipv4::Packet::new_unchecked(&mut ip[..plan.hl]);
    let ff = frag_word(f.flags_frag(), 0, false);
    f.set_total_len(len as u16);
    f.set_flags_frag(ff);
    f.fill_checksum();
    len
}

/// The flags/offset word of a fragment at data offset `off` of a datagram whose word is
/// `orig`: the original offset plus `off / 8`; MF set unless this is the last piece of a
/// datagram that had it clear; DF and the reserved bit as they were.
#[inline]
fn frag_word(orig: u16, off: usize, last: bool) -> u16 {
    let mf = if last { orig & 0x2000 } else { 0x2000 };
    (orig & 0x8000) | (orig & 0x4000) | mf | ((orig & 0x1fff) + (off / 8) as u16)
}

/// Cuts the frame `m` (IPv4 header at its metadata's `l3_off`, Ethernet header before it
/// ready for the egress port) into fragments of at most `mtu` IP bytes, if its datagram is
/// bigger: fragments 2..N are copied into fresh single-segment mbufs from `pool` (the
/// Ethernet header copied too, short frames padded to 60 bytes) and handed to `send` in
/// order, then `m` itself is cut, in place, to the first fragment. Returns the number of
/// fragments (1: `m` fits, unchanged). Errors: DF set (`frag_needed`), not one segment
/// (`multi_seg`), shorter than its total length (`ipv4_truncated`), the pool ran out
/// (`frag_no_mbuf`; the fragments already handed to `send` stay sent). `m` is unchanged on
/// every error.
pub fn fragment_mbuf(
    m: &mut Mbuf,
    mtu: usize,
    pool: &Mempool,
    mut send: impl FnMut(Mbuf),
) -> Result<usize, DropReason> {
    let l3 = m.meta().l3_off as usize;
    if m.nb_segs() != 1 {
        return Err(DropReason::MultiSeg);
    }
    let d = m.data();
    let Some(Ok(ip)) = d.get(l3..).map(ipv4::Packet::new_checked) else {
        return Err(DropReason::Ipv4Truncated);
    };
    let (hl, total) = (ip.header_len(), ip.total_len() as usize);
    if total <= mtu {
        return Ok(1);
    }
    if ip.dont_frag() {
        return Err(DropReason::FragNeeded);
    }
    if d.len() < l3 + total || total < hl {
        return Err(DropReason::Ipv4Truncated);
    }
    let mut opts = [0u8; MAX_HEADER - ipv4::MIN_HEADER_LEN];
    let n = copied_options(&d[l3 + ipv4::MIN_HEADER_LEN..l3 + hl], &mut opts);
    let plan = plan(hl, ipv4::MIN_HEADER_LEN + n, total, mtu).ok_or(DropReason::FragNeeded)?;
    let orig = &d[l3..l3 + total];
    for k in 1..plan.count {
        let Some(mut f) = pool.alloc() else {
            return Err(DropReason::FragNoMbuf);
        };
        let len = l3 + plan.hl_rest + plan.piece(k).1;
        if !f.set_len(len.max(ether::MIN_FRAME) as u16) {
            return Err(DropReason::FragNoMbuf);
        }
        let b = f.data_mut();
        b[..l3].copy_from_slice(&d[..l3]);
        write_later(orig, &plan, &opts[..n], k, &mut b[l3..]);
        b[len..].fill(0);
        send(f);
    }
    let first = l3 + make_first(&mut m.data_mut()[l3..], &plan);
    m.set_len(first as u16);
    Ok(plan.count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::Packet;

    /// A datagram of `total` bytes: `opts` after the fixed header, a recognisable payload.
    fn datagram(total: usize, opts: &[u8], ff: u16) -> Vec<u8> {
        let hl = 20 + opts.len();
        let mut b = vec![0u8; total];
        for (i, x) in b.iter_mut().enumerate() {
            *x = (i * 7 + 3) as u8;
        }
        b[20..hl].copy_from_slice(opts);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version_and_header_len(hl);
        p.set_ds(0);
        p.set_total_len(total as u16);
        p.set_ident(0x4242);
        p.set_flags_frag(ff);
        p.set_ttl(63);
        p.set_protocol(17);
        p.set_src(0x0a00_0002);
        p.set_dst(0xc000_0202);
        p.fill_checksum();
        b
    }

    /// Cuts `ip` with the module's functions, as the stage does.
    fn fragment(ip: &[u8], mtu: usize) -> Vec<Vec<u8>> {
        let hl = Packet::new_unchecked(ip).header_len();
        let mut opts = [0u8; 40];
        let n = copied_options(&ip[20..hl], &mut opts);
        let p = plan(hl, 20 + n, ip.len(), mtu).unwrap();
        let mut out = Vec::new();
        let mut first = ip.to_vec();
        let l = make_first(&mut first, &p);
        first.truncate(l);
        if p.count == 1 {
            return vec![ip.to_vec()];
        }
        out.push(first);
        for k in 1..p.count {
            let mut b = vec![0u8; 1600.max(mtu)];
            let l = write_later(ip, &p, &opts[..n], k, &mut b);
            b.truncate(l);
            out.push(b);
        }
        out
    }

    /// An independent reassembly (RFC 815's idea, simply): every fragment is checked on its
    /// own (size, checksum, offset alignment, identity), its data placed at its offset; the
    /// holes must close and the datagram end with the fragment without MF. Returns the
    /// reassembled header (the first fragment's) and data, and the original offset/MF word.
    fn reassemble(frags: &[Vec<u8>], mtu: usize) -> (Vec<u8>, Vec<u8>) {
        let mut data = vec![None::<u8>; 70000];
        let mut end = None;
        let mut header = None;
        for f in frags {
            let p = Packet::new_checked(&f[..]).unwrap();
            assert!(
                f.len() <= mtu,
                "fragment of {} bytes over the MTU {mtu}",
                f.len()
            );
            assert_eq!(p.total_len() as usize, f.len());
            assert!(p.verify_checksum(), "fragment checksum");
            assert_eq!(p.ident(), 0x4242);
            let hl = p.header_len();
            let off = p.frag_offset();
            let len = f.len() - hl;
            if p.more_frags() {
                assert_eq!(len % 8, 0, "non-last fragment data not a multiple of 8");
            } else {
                assert!(end.is_none(), "two last fragments");
                end = Some(off + len);
            }
            if off == 0 {
                header = Some(f[..hl].to_vec());
            }
            for (i, b) in f[hl..].iter().enumerate() {
                assert!(data[off + i].is_none(), "overlap at {}", off + i);
                data[off + i] = Some(*b);
            }
        }
        let end = end.expect("no last fragment");
        let data: Vec<u8> = data[..end]
            .iter()
            .map(|b| b.expect("hole in the reassembled datagram"))
            .collect();
        (header.expect("no first fragment"), data)
    }

    /// Reassembles and compares with the original, byte for byte (header fields a
    /// reassembler rewrites aside: total length, flags, checksum).
    fn check(ip: &[u8], mtu: usize, want: usize) {
        let frags = fragment(ip, mtu);
        assert_eq!(frags.len(), want, "fragment count");
        let (h, d) = reassemble(&frags, mtu);
        let hl = Packet::new_unchecked(ip).header_len();
        // The first fragment's header is the original's but for total length, flags/offset
        // and checksum; the reassembled data is the original's.
        let same =
            |a: &[u8], b: &[u8], at: std::ops::Range<usize>| assert_eq!(a[at.clone()], b[at]);
        assert_eq!(h.len(), hl);
        same(&h, ip, 0..2);
        same(&h, ip, 4..6);
        same(&h, ip, 8..10);
        same(&h, ip, 12..hl);
        assert_eq!(d, &ip[hl..], "reassembled data");
        // The fixed fields of every later fragment are the original's (TTL, protocol,
        // addresses, identification, DS, DF).
        for f in &frags[1..] {
            same(f, ip, 1..2);
            same(f, ip, 4..6);
            same(f, ip, 8..10);
            same(f, ip, 12..20);
            assert_eq!(f[6] & 0x40, ip[6] & 0x40, "DF");
        }
    }

    #[test]
    fn udp_4000_and_9000_cut_for_1500() {
        // 4000 bytes: 1480 + 1480 + 1020.
        let ip = datagram(4000, &[], 0);
        check(&ip, 1500, 3);
        let f = fragment(&ip, 1500);
        let lens: Vec<usize> = f.iter().map(Vec::len).collect();
        assert_eq!(lens, [1500, 1500, 1040]);
        let offs: Vec<usize> = f
            .iter()
            .map(|f| Packet::new_unchecked(&f[..]).frag_offset())
            .collect();
        assert_eq!(offs, [0, 1480, 2960]);
        let mf: Vec<bool> = f
            .iter()
            .map(|f| Packet::new_unchecked(&f[..]).more_frags())
            .collect();
        assert_eq!(mf, [true, true, false]);
        // 9000 bytes: 7 fragments.
        check(&datagram(9000, &[], 0), 1500, 7);
        // Odd MTUs: data cut at multiples of 8 below the MTU.
        check(&datagram(4000, &[], 0), 1403, 3);
        check(&datagram(2000, &[], 0), 68, 42);
        check(&datagram(1500, &[], 0), 1500, 1);
        check(&datagram(1501, &[], 0), 1500, 2);
    }

    #[test]
    fn options_with_the_copy_bit_go_into_later_fragments() {
        // Record route (7, not copied: 7 bytes), NOP, loose source route (131, copied: 7
        // bytes), end of list.
        let opts = [7, 7, 4, 0, 0, 0, 0, 1, 131, 7, 4, 1, 2, 3, 4, 0];
        let ip = datagram(3000, &opts, 0);
        let f = fragment(&ip, 1000);
        check(&ip, 1000, f.len());
        assert_eq!(Packet::new_unchecked(&f[0][..]).header_len(), 36);
        for l in &f[1..] {
            let p = Packet::new_unchecked(&l[..]);
            assert_eq!(p.header_len(), 28);
            assert_eq!(&l[20..28], &[131, 7, 4, 1, 2, 3, 4, 0]);
        }
        // Only uncopied options: later fragments have a plain header.
        let ip = datagram(3000, &[7, 3, 4, 0], 0);
        for l in &fragment(&ip, 1000)[1..] {
            assert_eq!(Packet::new_unchecked(&l[..]).header_len(), 20);
        }
        // A malformed list copies what came before the fault.
        let mut out = [0u8; 40];
        assert_eq!(copied_options(&[131, 3, 1, 7, 9, 0, 0, 0], &mut out), 4);
        assert_eq!(&out[..4], &[131, 3, 1, 0]);
    }

    #[test]
    fn a_fragment_is_refragmented_with_its_offset_and_mf() {
        // The middle piece of a bigger datagram: offset 1480 bytes (185 units), MF set.
        let ip = datagram(3020, &[], 0x2000 | 185);
        let f = fragment(&ip, 1000);
        assert_eq!(f.len(), 4);
        for (k, l) in f.iter().enumerate() {
            let p = Packet::new_unchecked(&l[..]);
            assert_eq!(p.frag_offset(), 1480 + k * 976, "offset of piece {k}");
            assert!(p.more_frags(), "every piece of a middle fragment has MF");
        }
        // The last piece of a datagram (MF clear): only its last piece has MF clear.
        let ip = datagram(3020, &[], 185);
        let f = fragment(&ip, 1000);
        let mf: Vec<bool> = f
            .iter()
            .map(|f| Packet::new_unchecked(&f[..]).more_frags())
            .collect();
        assert_eq!(mf, [true, true, true, false]);
        // Data offsets line up: reassembling gives the original's data at 1480.
        let mut data = vec![0u8; 3000];
        for l in &f {
            let p = Packet::new_unchecked(&l[..]);
            let o = p.frag_offset() - 1480;
            data[o..o + l.len() - 20].copy_from_slice(&l[20..]);
        }
        assert_eq!(&data[..], &ip[20..]);
    }

    #[test]
    fn no_plan_below_header_plus_eight() {
        assert_eq!(plan(60, 20, 1000, 67), None);
        assert!(plan(60, 20, 1000, 68).is_some());
        assert_eq!(plan(20, 20, 1000, 27), None);
    }
}
