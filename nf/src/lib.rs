//! pollfwd's network functions, each a [`pipeline::Stage`] over bursts:
//! - [`xconnect`]: port pairs, what enters port A leaves port B (and back);
//! - [`macswap`]: swaps source and destination MAC, then continues;
//! - [`classify`]: IPv4 ACL (rte_acl) with permit/deny and class labels;
//! - [`nat`]: NAT44 (NAPT, static DNAT, conntrack timeouts, ICMP, hairpinning, across workers);
//! - [`forward`]: IPv4 router (rte_lpm routes, ARP, ICMP, RFC 1812 checks);
//! - [`wire`]: packet formats (views over Ethernet, ARP, IPv4, ICMP, UDP, TCP), the IPv4
//!   validity parser and the Internet checksum, for every stage;
//! - [`parse`]: the flow key every IPv4 stage reuses, parsed once into the packet metadata.

pub use pollfwd_pipeline as pipeline;

pub mod classify;
pub mod forward;
pub mod fragmemo;
pub mod macswap;
pub mod nat;
pub mod parse;
pub mod policer;
pub mod wire;
pub mod xconnect;
