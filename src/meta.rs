//! Per-packet metadata kept in the mbuf private area, so that it travels with the packet when
//! stages run on different lcores joined by rings. Plain data: every bit pattern is valid.

/// Flags in [`PktMeta::flags`].
pub mod flags {
    /// L3/L4 offsets and the flow key have been filled in by a parser.
    pub const PARSED: u16 = 1 << 0;
    /// The packet is IPv4.
    pub const IPV4: u16 = 1 << 1;
    /// Non-first IPv4 fragment: no L4 header in this packet.
    pub const FRAG_NONFIRST: u16 = 1 << 2;
    /// The IPv4 packet is a fragment (first or not).
    pub const FRAG: u16 = 1 << 3;
    /// A stage changed the packet (used by pcap-verified tests and tracing).
    pub const MODIFIED: u16 = 1 << 4;
    /// NAT translated the packet: [`super::PktMeta`]'s `pre_*` fields hold its addresses and
    /// ports as its sender wrote them (for ICMP errors the appliance sends about it).
    pub const NATTED: u16 = 1 << 5;
}

/// Per-packet metadata. Written by stages on the lcore that owns the packet.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PktMeta {
    /// TSC when the packet's burst was received (dwell-time measurement).
    pub rx_tsc: u64,
    /// Flow key, host byte order: source/destination IPv4 address.
    pub src_ip: u32,
    pub dst_ip: u32,
    /// Flow key: L4 source/destination port (ICMP query id in `src_port`).
    pub src_port: u16,
    pub dst_port: u16,
    /// Offset of the L3 header from the start of the frame.
    pub l3_off: u16,
    /// Offset of the L4 header from the start of the frame.
    pub l4_off: u16,
    /// Port the packet arrived on.
    pub in_port: u16,
    /// Egress port chosen by a stage (forward, xconnect).
    pub out_port: u16,
    /// Class label set by the classify stage (0 = none).
    pub class: u16,
    /// Bits from [`flags`].
    pub flags: u16,
    /// IP protocol number.
    pub proto: u8,
    /// Colour set by the policer (0 green, 1 yellow, 2 red).
    pub color: u8,
    /// Stage index a handed-off packet resumes at (set by the runtime).
    pub resume: u8,
    /// Free for stages.
    pub spare: u8,
    /// Next-hop index chosen by the forward stage.
    pub next_hop: u16,
    /// Free for stages (e.g. NAT: owning worker).
    pub aux: u32,
    /// With [`flags::NATTED`]: source and destination address and L4 ports (ICMP query
    /// identifier in `pre_sport`) before NAT translated the packet, host byte order.
    pub pre_src: u32,
    pub pre_dst: u32,
    pub pre_sport: u16,
    pub pre_dport: u16,
}

impl PktMeta {
    /// Metadata of a freshly received packet.
    #[inline]
    pub fn fresh(in_port: u16, rx_tsc: u64) -> Self {
        PktMeta {
            rx_tsc,
            in_port,
            ..Default::default()
        }
    }
}

const _: () = assert!(std::mem::size_of::<PktMeta>() <= 64);
