//! IPv4 address and prefix syntax shared by every section (`a.b.c.d` or `a.b.c.d/len`). Each
//! section words its own error messages from [`PrefixError`] and decides what host bits mean.

use std::net::Ipv4Addr;

/// Why a prefix did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixError {
    /// The part before `/` is not an IPv4 address.
    Address,
    /// The part after `/` is not a length 0..=32.
    Length,
}

/// Parses `a.b.c.d[/len]` (len 32 when absent) into the address as given (host bits kept)
/// and the length.
pub fn parse_prefix(s: &str) -> Result<(u32, u8), PrefixError> {
    let (a, len) = s.split_once('/').unwrap_or((s, "32"));
    let len = len
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or(PrefixError::Length)?;
    let a: Ipv4Addr = a.trim().parse().map_err(|_| PrefixError::Address)?;
    Ok((u32::from(a), len))
}

/// The netmask of a prefix length (0..=32).
pub fn mask(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_with_their_errors() {
        assert_eq!(parse_prefix("10.1.2.3/8"), Ok((0x0a01_0203, 8)));
        assert_eq!(parse_prefix(" 192.0.2.1 "), Ok((0xc000_0201, 32)));
        assert_eq!(parse_prefix("0.0.0.0/0"), Ok((0, 0)));
        assert_eq!(parse_prefix("10.0.0.0/33"), Err(PrefixError::Length));
        assert_eq!(parse_prefix("10.0.0.0/x"), Err(PrefixError::Length));
        assert_eq!(parse_prefix("10.0.0/8"), Err(PrefixError::Address));
        assert_eq!(mask(0), 0);
        assert_eq!(mask(24), 0xffff_ff00);
        assert_eq!(mask(32), u32::MAX);
    }
}
