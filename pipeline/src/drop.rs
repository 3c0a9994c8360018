//! The one table of drop reasons. Every dropped packet carries one; the enum, the short names
//! an operator reads in `pollfwdctl stats` / metrics, and the explanations all come from here.
//! Network functions add their reasons to this table (one line each), nowhere else.

macro_rules! drop_reasons {
    ($($variant:ident => $name:literal, $help:literal;)*) => {
        /// Why a packet was dropped.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum DropReason { $($variant),* }

        impl DropReason {
            /// Every reason, in table order (index = `as usize`).
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant),*];
            /// Number of reasons.
            pub const COUNT: usize = [$($name),*].len();

            /// Short snake_case name used in counters and metrics.
            pub const fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name),* }
            }

            /// One sentence for the operator.
            pub const fn help(self) -> &'static str {
                match self { $(DropReason::$variant => $help),* }
            }

            pub fn from_name(s: &str) -> Option<DropReason> {
                Self::ALL.iter().copied().find(|r| r.name() == s)
            }
        }
    };
}

drop_reasons! {
    // Runtime.
    ChainEnd => "chain_end", "no stage of the lcore's chain chose an egress port";
    NoTxQueue => "no_tx_queue", "the lcore has no TX queue on the egress port";
    TxFull => "tx_full", "the NIC TX queue refused the packet (freed)";
    RingFull => "ring_full", "congestion: the hand-off ring to the next lcore was full";
    BadPort => "bad_port", "a stage chose an egress port that does not exist";
    HandoffFull => "handoff_full", "congestion: hand-off ring to the owning worker was full";
    BadHandoff => "bad_handoff", "a stage handed off to a worker without a hand-off ring";
    // Ethernet.
    Runt => "runt", "frame shorter than an Ethernet header (14 bytes)";
    MultiSeg => "multi_seg", "multi-segment frame (jumbo) not supported by the stage";
    NoXconnect => "no_xconnect", "ingress port has no cross-connect peer";
    VlanUnknown => "vlan_unknown", "VLAN-tagged frame for a VLAN no interface of the port is configured for";
    // IPv4 validity (RFC 1812 5.2.2) and forwarding.
    NotIpv4 => "not_ipv4", "not an IPv4 frame (other EtherType)";
    Ipv4Truncated => "ipv4_truncated", "frame too short for the IPv4 header or its total length";
    Ipv4BadVersion => "ipv4_bad_version", "IPv4 version field is not 4";
    Ipv4BadIhl => "ipv4_bad_ihl", "IPv4 header length below 20 bytes";
    Ipv4BadLength => "ipv4_bad_length", "IPv4 total length below the header length";
    Ipv4BadChecksum => "ipv4_bad_checksum", "IPv4 header checksum is wrong";
    Ipv4BadSource => "ipv4_bad_source", "IPv4 source is multicast, broadcast or loopback";
    TtlExpired => "ttl_expired", "TTL reached zero (ICMP time exceeded sent when allowed)";
    NoRoute => "no_route", "no route to the destination (ICMP unreachable sent when allowed)";
    NeighborUnresolved => "neighbor_unresolved", "next hop MAC unknown and its wait queue is full";
    NeighborHeldExpired => "neighbor_held_expired", "parked while ARP resolved the next hop, which never answered in time";
    Shutdown => "shutdown", "still held by a stage (e.g. parked for ARP) or in a ring between lcores when the appliance stopped";
    Ipv4BadDest => "ipv4_bad_dest", "IPv4 destination is loopback, 0/8, class E or multicast (not routed)";
    L2Broadcast => "l2_broadcast", "IPv4 packet received as link-layer broadcast/multicast: not forwarded (RFC 1812 5.3.4)";
    ForUs => "for_us", "addressed to the appliance and consumed (ARP, ICMP echo)";
    ArpInvalid => "arp_invalid", "malformed or irrelevant ARP packet";
    IcmpRateLimited => "icmp_rate_limited", "ICMP error suppressed by the rate limit";
    Ipv4Options => "ipv4_options", "IPv4 options not handled by this stage";
    FragNeeded => "frag_needed", "bigger than the egress MTU with DF set (ICMP fragmentation needed sent when allowed, RFC 1191)";
    FragNoMbuf => "frag_no_mbuf", "bigger than the egress MTU, and the mbuf pool ran out while cutting it into fragments";
    // IPv6 validity (RFC 8200) and neighbour discovery (RFC 4861).
    Ipv6Truncated => "ipv6_truncated", "frame too short for the IPv6 header (40 bytes) or its payload length";
    Ipv6BadVersion => "ipv6_bad_version", "IPv6 version field is not 6";
    Ipv6BadLength => "ipv6_bad_length", "IPv6 payload length 0 with a hop-by-hop header: a jumbogram (RFC 2675), not supported";
    Ipv6BadExtHeader => "ipv6_bad_ext_header", "IPv6 extension-header chain malformed, truncated or too long (hop-by-hop not first, over 8 headers)";
    NdBadHopLimit => "nd_bad_hop_limit", "neighbour discovery message with a hop limit other than 255: not from the link, ignored (RFC 4861 7.1)";
    NdBadOption => "nd_bad_option", "neighbour discovery option of length 0 or running past the message (RFC 4861 4.6)";
    NdInvalid => "nd_invalid", "neighbour discovery message failing another RFC 4861 validity check (code, length, target, addresses, fragmented)";
    NdNotRouted => "nd_not_routed", "neighbour discovery message (hop limit 255) addressed beyond the box: link-local by nature, never routed";
    Icmpv6BadChecksum => "icmpv6_bad_checksum", "ICMPv6 checksum is wrong";
    Ipv6BadSource => "ipv6_bad_source", "IPv6 source is multicast, loopback or IPv4-mapped (RFC 4291)";
    Ipv6BadDest => "ipv6_bad_dest", "IPv6 destination is unspecified, loopback or IPv4-mapped (never routed)";
    Ipv6LinkLocal => "ipv6_link_local", "IPv6 link-local destination not the box's, or link-local source to another link (never forwarded, RFC 4291 2.5.6)";
    Ipv6Multicast => "ipv6_multicast", "IPv6 multicast not for the box: it neither routes multicast nor joins groups (neighbour discovery excepted)";
    Ipv6HopLimit => "ipv6_hop_limit", "IPv6 hop limit reached zero (ICMPv6 time exceeded sent when allowed)";
    Ipv6NoRoute => "ipv6_no_route", "no IPv6 route to the destination (ICMPv6 no route sent when allowed)";
    Ipv6TooBig => "ipv6_too_big", "IPv6 packet bigger than the egress MTU: routers never fragment (ICMPv6 packet too big sent when allowed)";
    // Classify.
    AclDeny => "acl_deny", "denied by an ACL rule or the default action";
    AclTcpFragOffset1 => "acl_tcp_frag_offset1", "TCP fragment at offset 1, which could overwrite the TCP header on reassembly (RFC 3128)";
    // NAT44.
    NatNoSession => "nat_no_session", "outside packet matching no NAT session or static mapping";
    NatFiltered => "nat_filtered", "inbound packet refused by the NAT filtering mode (RFC 4787 REQ-8)";
    NatPortsExhausted => "nat_ports_exhausted", "no free outside port for a new NAT session";
    NatTableFull => "nat_table_full", "NAT session table full";
    NatHostLimit => "nat_host_limit", "inside host reached its NAT session limit";
    NatBlockExhausted => "nat_block_exhausted", "inside host's deterministic NAT port block has no free port";
    NatUnsupported => "nat_unsupported", "protocol or fragment NAT cannot translate";
    NatFragment => "nat_fragment", "non-first fragment whose first fragment NAT has not seen, with no room to wait for it";
    NatFragmentTimeout => "nat_fragment_timeout", "non-first fragment held for its first fragment, which did not come within 1 s";
    // Rate limit.
    PolicerRed => "policer_red", "policer marked the packet red and its red action is drop";
    PolicerYellow => "policer_yellow", "policer marked the packet yellow and its yellow action is drop";
    PolicerGreen => "policer_green", "policer marked the packet green and its green action is drop";
    PolicerTableFull => "policer_table_full", "per-source policer table full";
    PolicerProbeLimit => "policer_probe_limit", "per-source policer: the new source's hash slots are all taken (colliding sources)";
}

#[cfg(test)]
mod tests {
    use super::DropReason;

    #[test]
    fn table_is_consistent() {
        assert_eq!(DropReason::ALL.len(), DropReason::COUNT);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert_eq!(DropReason::from_name(r.name()), Some(*r));
            assert!(!r.help().is_empty());
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT, "duplicate drop reason name");
    }
}
