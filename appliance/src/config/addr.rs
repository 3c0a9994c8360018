//! Address syntax shared by every section: IPv4 prefixes (`a.b.c.d` or `a.b.c.d/len`; each
//! section words its own error messages from [`PrefixError`] and decides what host bits mean),
//! and an interface's `address` key ([`Addresses`]: one address or a list, either family).

use std::fmt;
use std::net::Ipv4Addr;

use serde::Deserialize;
use serde::de::{self, SeqAccess, Visitor};

/// The `address` key of a port or sub-interface: `"192.0.2.1/24"` or a list mixing both
/// families, `["192.0.2.1/24", "2001:db8:1::1/64"]`. Kept as text; the forward stage parses
/// and validates it (`nf::forward::config`). An address holding ':' is IPv6.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Addresses(pub Vec<String>);

impl Addresses {
    /// The IPv4 addresses (at most one passes validation).
    pub fn v4(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .map(|s| s.as_str())
            .filter(|s| !s.contains(':'))
    }

    /// The IPv6 addresses.
    pub fn v6(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .map(|s| s.as_str())
            .filter(|s| s.contains(':'))
    }
}

impl fmt::Display for Addresses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

impl<'de> Deserialize<'de> for Addresses {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Addresses, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Addresses;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address \"a.b.c.d/len\" or \"x:y::z/len\", or a list of them")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Addresses, E> {
                Ok(Addresses(vec![s.to_string()]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Addresses, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                if v.is_empty() {
                    return Err(de::Error::custom(
                        "an empty address list: leave `address` out",
                    ));
                }
                Ok(Addresses(v))
            }
        }
        d.deserialize_any(V)
    }
}

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

    #[derive(Deserialize)]
    struct A {
        address: toml::Spanned<Addresses>,
    }

    #[test]
    fn addresses_are_one_string_or_a_list() {
        let a: A = toml::from_str("address = \"10.0.0.1/24\"").unwrap();
        assert_eq!(
            a.address.get_ref().v4().collect::<Vec<_>>(),
            ["10.0.0.1/24"]
        );
        assert_eq!(a.address.get_ref().v6().count(), 0);
        let text = "address = [\"2001:db8::1/64\", \"10.0.0.1/24\"]";
        let a: A = toml::from_str(text).unwrap();
        assert_eq!(
            a.address.get_ref().v6().collect::<Vec<_>>(),
            ["2001:db8::1/64"]
        );
        assert_eq!(
            a.address.get_ref().to_string(),
            "2001:db8::1/64, 10.0.0.1/24"
        );
        assert_eq!(
            a.address.span(),
            10..text.len(),
            "errors point at the value"
        );
        assert!(toml::from_str::<A>("address = []").is_err());
        assert!(toml::from_str::<A>("address = 5").is_err());
        assert!(toml::from_str::<A>("address = [5]").is_err());
    }
}
