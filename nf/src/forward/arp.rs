//! ARP for IPv4 over Ethernet (RFC 826), parsed and built with the wire module's views: the
//! appliance answers requests for its own (and proxy) addresses in place, and builds the
//! requests that resolve next hops.

use crate::wire::arp::{self as warp, op};
use crate::wire::ether::{self, EtherType};

/// Minimum Ethernet frame length without the FCS: frames the appliance builds are padded to it.
pub const MIN_FRAME: usize = ether::MIN_FRAME;

/// The fields of an Ethernet/IPv4 ARP packet, addresses in host byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// The operation ([`op::REQUEST`], [`op::REPLY`], or another value).
    pub op: u16,
    pub sha: [u8; 6],
    pub spa: u32,
    pub tha: [u8; 6],
    pub tpa: u32,
}

impl Arp {
    /// A gratuitous ARP announces the sender's own address (sender = target protocol address).
    pub fn is_gratuitous(&self) -> bool {
        self.spa == self.tpa
    }
}

/// Parses the ARP packet of an Ethernet frame (EtherType already known to be ARP). `None` for
/// anything but Ethernet/IPv4 ARP with 6- and 4-byte addresses, a truncated packet, or a
/// sender hardware address that is multicast/broadcast (RFC 1812 section 3.3.2: such replies
/// must not be believed).
pub fn parse(frame: &[u8]) -> Option<Arp> {
    let pkt = warp::Packet::new_checked(frame.get(ether::HEADER_LEN..)?)?;
    if !pkt.is_ethernet_ipv4() {
        return None;
    }
    let sha = pkt.sha();
    if ether::is_group(sha[0]) {
        return None;
    }
    Some(Arp {
        op: pkt.oper(),
        sha,
        spa: pkt.spa(),
        tha: pkt.tha(),
        tpa: pkt.tpa(),
    })
}

/// Writes an Ethernet + ARP frame's headers into `frame` (>= 42 bytes).
fn emit(
    frame: &mut [u8],
    dst_mac: &[u8; 6],
    oper: u16,
    sender: ([u8; 6], u32),
    target: ([u8; 6], u32),
) {
    let mut eth = ether::Frame::new_unchecked(&mut frame[..]);
    eth.set_dst(dst_mac);
    eth.set_src(&sender.0);
    eth.set_ethertype(EtherType::Arp);
    let mut a = warp::Packet::new_unchecked(&mut frame[ether::HEADER_LEN..]);
    a.set_ethernet_ipv4(oper);
    a.set_sha(&sender.0);
    a.set_spa(sender.1);
    a.set_tha(&target.0);
    a.set_tpa(target.1);
}

/// Turns a received request `req` (in `frame`) into the reply "`req.tpa` is at `my_mac`", in
/// place: ARP operation 2, sender = us, target = the requester, Ethernet addresses to match.
/// The frame keeps its length (padding included).
pub fn reply_in_place(frame: &mut [u8], req: &Arp, my_mac: [u8; 6]) {
    emit(
        frame,
        &req.sha,
        op::REPLY,
        (my_mac, req.tpa),
        (req.sha, req.spa),
    );
}

/// Builds the request "who has `target`? tell `src_ip`" into `buf` (>= 60 bytes), padded to
/// the minimum frame. `dst_mac` is the broadcast address, or the neighbour's known address for
/// a unicast refresh (RFC 1122 section 2.3.2.1). Returns the frame length.
pub fn build_request(
    buf: &mut [u8],
    src_mac: [u8; 6],
    src_ip: u32,
    target: u32,
    dst_mac: [u8; 6],
) -> usize {
    buf[..MIN_FRAME].fill(0);
    emit(
        buf,
        &dst_mac,
        op::REQUEST,
        (src_mac, src_ip),
        ([0; 6], target),
    );
    MIN_FRAME
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
    const HOST: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 2];

    /// A request from 192.0.2.2 (02:bb::2) for 192.0.2.1, written out byte by byte (RFC 826).
    fn request_fixture() -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&HOST);
        f.extend_from_slice(&[0x08, 0x06]);
        f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]); // Ethernet, IPv4, 6, 4, request
        f.extend_from_slice(&HOST);
        f.extend_from_slice(&[192, 0, 2, 2]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&[192, 0, 2, 1]);
        f.resize(60, 0);
        f
    }

    #[test]
    fn parses_a_request_fixture() {
        let a = parse(&request_fixture()).unwrap();
        assert_eq!(a.op, op::REQUEST);
        assert_eq!(a.sha, HOST);
        assert_eq!(a.spa, 0xc000_0202);
        assert_eq!(a.tpa, 0xc000_0201);
        assert!(!a.is_gratuitous());
    }

    #[test]
    fn reply_in_place_is_byte_exact() {
        let mut f = request_fixture();
        let a = parse(&f).unwrap();
        reply_in_place(&mut f, &a, ME);
        let mut want = HOST.to_vec();
        want.extend_from_slice(&ME);
        want.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
        want.extend_from_slice(&ME);
        want.extend_from_slice(&[192, 0, 2, 1]);
        want.extend_from_slice(&HOST);
        want.extend_from_slice(&[192, 0, 2, 2]);
        want.resize(60, 0);
        assert_eq!(f, want);
    }

    #[test]
    fn request_is_byte_exact_and_padded() {
        let mut b = [0xeeu8; 128];
        let n = build_request(&mut b, ME, 0xc000_0201, 0xc000_0263, [0xff; 6]);
        assert_eq!(n, 60);
        let mut want = vec![0xff; 6];
        want.extend_from_slice(&ME);
        want.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        want.extend_from_slice(&ME);
        want.extend_from_slice(&[192, 0, 2, 1]);
        want.extend_from_slice(&[0; 6]);
        want.extend_from_slice(&[192, 0, 2, 99]);
        want.resize(60, 0);
        assert_eq!(&b[..60], &want[..]);
        let a = parse(&b[..60]).unwrap();
        assert_eq!((a.op, a.tpa), (op::REQUEST, 0xc000_0263));
    }

    #[test]
    fn rejects_malformed_and_untrustworthy() {
        let f = request_fixture();
        assert!(parse(&f[..14 + 27]).is_none(), "truncated");
        assert!(parse(&f[..10]).is_none(), "runt");
        let mut hw = f.clone();
        hw[15] = 6; // hardware type 6 (IEEE 802)
        assert!(parse(&hw).is_none());
        let mut plen = f.clone();
        plen[19] = 16; // protocol length 16
        assert!(parse(&plen).is_none());
        let mut mc = f.clone();
        mc[22] = 0x01; // multicast sender hardware address
        assert!(parse(&mc).is_none());
    }
}
