//! The IPv4 address classes RFC 1812 says a router must not forward from or to (the header
//! rewrites themselves are the wire module's: [`crate::wire::ipv4::Packet::decrement_ttl`],
//! [`crate::wire::ipv4::Words`]).

/// 255.255.255.255, the limited broadcast address (RFC 1812 section 4.2.3.1).
pub const LIMITED_BROADCAST: u32 = 0xffff_ffff;

/// Whether a source address must not be forwarded from (RFC 1812 section 5.3.7, "Martian
/// Address Filtering", and 4.2.2.11): 0.0.0.0/8, 127.0.0.0/8, multicast 224.0.0.0/4 and the
/// class E range 240.0.0.0/4 (which holds the limited broadcast address).
#[inline]
pub const fn bad_source(src: u32) -> bool {
    let a = (src >> 24) as u8;
    a == 0 || a == 127 || a >= 224
}

/// Whether a destination is not forwarded (RFC 1812 section 5.3.7 and 4.2.2.11): 0.0.0.0/8,
/// 127.0.0.0/8, class E 240.0.0.0/4 — and multicast 224.0.0.0/4, since this router does not
/// route multicast. The limited broadcast address is not "bad": it is for the local link (the
/// forward stage consumes it).
#[inline]
pub const fn bad_destination(dst: u32) -> bool {
    let a = (dst >> 24) as u8;
    (a == 0 || a == 127 || a >= 224) && dst != LIMITED_BROADCAST
}

/// Whether an IPv4 address is a unique unicast address a host may have (for ICMP error
/// eligibility, RFC 1812 section 4.3.2.7): not 0/8, 127/8, multicast, class E or broadcast.
#[inline]
pub fn is_unicast(a: u32) -> bool {
    !bad_source(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn martians() {
        let ip = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap());
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "224.0.0.5",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(bad_source(ip(s)), "{s}");
        }
        for s in ["10.0.0.1", "192.0.2.1", "223.255.255.254", "1.1.1.1"] {
            assert!(!bad_source(ip(s)), "{s}");
            assert!(!bad_destination(ip(s)), "{s}");
        }
        for s in ["0.0.0.0", "127.1.1.1", "224.0.0.1", "240.0.0.1"] {
            assert!(bad_destination(ip(s)), "{s}");
        }
        assert!(!bad_destination(LIMITED_BROADCAST));
    }
}
