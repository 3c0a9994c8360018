//! Classify: an IPv4 and IPv6 ACL over the 5-tuple and the ingress port, compiled with DPDK's
//! `rte_acl` (one context per family).
//!
//! Per burst: every packet is parsed once ([`crate::parse::parse_ipv4_frame`], skipped when an
//! earlier stage already did; IPv6: [`crate::wire::ipv6::validate`]), its [`Ipv4Key`] or
//! [`Ipv6Key`] is written into a stage-owned scratch array of its family, and each family's
//! packets of the burst are classified with one `rte_acl_classify` call. The winning rule's
//! action is applied: `deny` drops the packet (`acl_deny`), `permit` lets it continue with the
//! rule's class label in [`dpdk::PktMeta::class`] (0 = no class). A packet no rule matches gets
//! the table's default action. Other frames (ARP) and IPv6 neighbour discovery (ICMPv6 types
//! 133-137 with hop limit 255: IPv6's ARP) continue untouched: the forward stage must still see
//! them; malformed IPv4 and IPv6 are dropped with the parser's reason.
//!
//! Fragments: a datagram's later fragments are classified with its first fragment's ports
//! ([`frag`]); a TCP fragment at offset 1 is dropped (RFC 3128).
//!
//! Hit counters: one (packets, bytes) pair per rule plus one for the default action, per worker
//! ([`HitCounters`]: single-writer atomics the management side sums). A burst's hits are
//! tallied in locals and each rule hit in the burst is written once.
//!
//! Rule sets are compiled off the data path into an [`AclTable`] and handed to every worker as
//! an [`Install`] through [`Stage::control`]: the worker swaps table and counters between two
//! bursts, so a burst is classified by exactly one rule set, never a half-applied one.

pub mod frag;

use std::any::Any;
use std::sync::Arc;

use dpdk::acl::{Acl, Acl6, Ipv4Key, Ipv4Rule, Ipv6Key, Ipv6Rule};
use dpdk::meta::flags;
use dpdk::{BURST_MAX, Mbuf, PktMeta};
use pollfwd_pipeline::counters::Counter;
use pollfwd_pipeline::{DropReason, Stage, StageCtx, Verdict};

use crate::wire::ipv4::Frag;
use crate::wire::{ether, ipv6};
use frag::{FirstFragments, FirstFragments6, Frag6, FragPorts};

/// What a rule (or the default) does with a packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Action {
    /// Drop the packet (`acl_deny`).
    pub deny: bool,
    /// Class label for permitted packets (0 = none); later stages (policer) read it.
    pub class: u16,
}

impl Action {
    pub const PERMIT: Action = Action {
        deny: false,
        class: 0,
    };
    pub const DENY: Action = Action {
        deny: true,
        class: 0,
    };
}

/// The address family a rule applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Family {
    /// Both (a rule without addresses): compiled into both contexts.
    #[default]
    Any,
    Ipv4,
    Ipv6,
}

impl Family {
    /// Whether a rule of this family applies to IPv4 packets.
    pub fn ipv4(self) -> bool {
        self != Family::Ipv6
    }

    /// Whether a rule of this family applies to IPv6 packets.
    pub fn ipv6(self) -> bool {
        self != Family::Ipv4
    }
}

/// What a rule matches, host-order values; wildcards as in [`Ipv4Rule`] and [`Ipv6Rule`].
/// `src`/`dst` apply to IPv4 packets, `src6`/`dst6` to IPv6 packets; `family` says which
/// families the rule applies to at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub family: Family,
    /// IP protocol (IPv6: the upper-layer protocol, after the extension headers).
    pub proto: Option<u8>,
    pub src: (u32, u8),
    pub dst: (u32, u8),
    pub src6: (u128, u8),
    pub dst6: (u128, u8),
    pub sport: (u16, u16),
    pub dport: (u16, u16),
    /// DPDK port id of the ingress port.
    pub in_port: Option<u16>,
}

impl Default for Match {
    /// Matches everything, both families.
    fn default() -> Self {
        Match {
            family: Family::Any,
            proto: None,
            src: (0, 0),
            dst: (0, 0),
            src6: (0, 0),
            dst6: (0, 0),
            sport: (0, u16::MAX),
            dport: (0, u16::MAX),
            in_port: None,
        }
    }
}

/// One rule of a table to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableRule {
    /// Stable id the operator sees (`acl list`, `acl del`); kept across rebuilds so that
    /// counters follow the rule.
    pub id: u32,
    pub m: Match,
    /// Higher wins; between equal priorities the rule listed first wins.
    pub priority: i64,
    pub action: Action,
}

/// A compiled rule set: the `rte_acl` contexts (IPv4 and IPv6; a rule of both families is in
/// both with the same result), and per result (`rte_acl` userdata) the action and the rule id.
/// Index 0 is the default action (userdata 0 = no rule matched).
pub struct AclTable {
    acl: Acl,
    acl6: Acl6,
    actions: Box<[Action]>,
    ids: Box<[u32]>,
}

impl std::fmt::Debug for AclTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AclTable")
            .field("acl", &self.acl.name())
            .field("acl6", &self.acl6.name())
            .field("rules", &self.len())
            .field("default", &self.actions[0])
            .finish()
    }
}

/// `rte_acl` priority of each rule: distinct values in 1..=n, higher for higher `priority`,
/// and for equal `priority` higher for the rule listed first (first match wins on ties).
pub fn acl_priorities(rules: &[TableRule]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..rules.len()).collect();
    // Stable sort: equal priorities keep list order.
    order.sort_by_key(|&i| std::cmp::Reverse(rules[i].priority));
    let n = rules.len() as u32;
    let mut prio = vec![0u32; rules.len()];
    for (rank, &i) in order.iter().enumerate() {
        prio[i] = n - rank as u32;
    }
    prio
}

impl AclTable {
    /// Compiles `rules` (at most [`dpdk::acl::MAX_RULES`]) with `default` for unmatched
    /// packets. Slow for big sets (10,000 rules: about a second): never on the data path.
    pub fn build(rules: &[TableRule], default: Action) -> Result<AclTable, String> {
        let prio = acl_priorities(rules);
        // The result of a rule is its index + 1 in both contexts: one action, one counter.
        let raw: Vec<Ipv4Rule> = rules
            .iter()
            .zip(&prio)
            .enumerate()
            .filter(|(_, (r, _))| r.m.family.ipv4())
            .map(|(i, (r, &p))| Ipv4Rule {
                proto: r.m.proto,
                src: r.m.src,
                dst: r.m.dst,
                sport: r.m.sport,
                dport: r.m.dport,
                in_port: r.m.in_port,
                priority: p,
                userdata: i as u32 + 1,
            })
            .collect();
        let raw6: Vec<Ipv6Rule> = rules
            .iter()
            .zip(&prio)
            .enumerate()
            .filter(|(_, (r, _))| r.m.family.ipv6())
            .map(|(i, (r, &p))| Ipv6Rule {
                proto: r.m.proto,
                src: r.m.src6,
                dst: r.m.dst6,
                sport: r.m.sport,
                dport: r.m.dport,
                in_port: r.m.in_port,
                priority: p,
                userdata: i as u32 + 1,
            })
            .collect();
        let acl = Acl::build(&raw, -1).map_err(|e| e.to_string())?;
        let acl6 = Acl6::build(&raw6, -1).map_err(|e| e.to_string())?;
        let mut actions = Vec::with_capacity(rules.len() + 1);
        let mut ids = Vec::with_capacity(rules.len() + 1);
        actions.push(default);
        ids.push(0);
        for r in rules {
            actions.push(r.action);
            ids.push(r.id);
        }
        Ok(AclTable {
            acl,
            acl6,
            actions: actions.into(),
            ids: ids.into(),
        })
    }

    /// Number of rules (of either family).
    pub fn len(&self) -> usize {
        self.actions.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rules in the IPv4 and in the IPv6 context (a rule of both families counts in both).
    pub fn family_lens(&self) -> (usize, usize) {
        (self.acl.len(), self.acl6.len())
    }

    /// The `rte_acl` classify method the table runs with (None without rules: no context,
    /// every packet gets the default). Both contexts take the first method of the same
    /// preference order that DPDK accepts, so they agree when both have rules.
    pub fn alg(&self) -> Option<dpdk::acl::Alg> {
        self.acl.alg().or(self.acl6.alg())
    }

    /// The default action.
    pub fn default_action(&self) -> Action {
        self.actions[0]
    }

    /// Rule id of each counter slot (slot 0: the default action, id 0).
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Counter slots a worker needs for this table (rules + default).
    pub fn slots(&self) -> usize {
        self.actions.len()
    }

    /// The slot (0 = default) and action for each key: what the stage applies. For tests and
    /// tools; the stage uses the same lookup inline.
    pub fn lookup(&self, keys: &[Ipv4Key], slots: &mut [u32]) {
        self.acl.classify(keys, slots);
    }

    /// [`lookup`](Self::lookup) for IPv6 keys.
    pub fn lookup6(&self, keys: &[Ipv6Key], slots: &mut [u32]) {
        self.acl6.classify(keys, slots);
    }

    /// Action of a slot returned by [`lookup`](Self::lookup).
    pub fn action(&self, slot: u32) -> Action {
        self.actions
            .get(slot as usize)
            .copied()
            .unwrap_or(self.actions[0])
    }
}

/// Hits of one rule on one worker.
#[derive(Debug, Default)]
pub struct Hits {
    pub packets: Counter,
    /// Frame bytes (Ethernet header included, FCS excluded).
    pub bytes: Counter,
}

/// One worker's hit counters for one table, indexed by slot (0 = default action).
pub type HitCounters = Arc<[Hits]>;

/// Fresh zeroed counters for `table`.
pub fn new_hits(table: &AclTable) -> HitCounters {
    (0..table.slots()).map(|_| Hits::default()).collect()
}

/// The control message that installs a rule set on one worker; the stage answers with the
/// `Install` it replaced (freed by the management thread once every worker switched).
pub struct Install {
    pub table: Arc<AclTable>,
    /// This worker's counters for `table` (length `table.slots()`).
    pub hits: HitCounters,
}

/// The classify stage of one worker.
pub struct Classify {
    table: Arc<AclTable>,
    hits: HitCounters,
    /// Scratch, reused every burst: keys of the IPv4 packets, their burst index, results.
    keys: Box<[Ipv4Key; BURST_MAX]>,
    idx: [u8; BURST_MAX],
    results: [u32; BURST_MAX],
    /// The IPv6 side, out of line: an IPv4 burst never touches it.
    v6: Box<Ipv6Side>,
    tally: Tally,
    frags: FirstFragments,
}

/// The classify stage's IPv6 scratch and fragment memo.
struct Ipv6Side {
    /// Keys of the burst's IPv6 packets, their burst index, results.
    keys: [Ipv6Key; BURST_MAX],
    idx: [u8; BURST_MAX],
    results: [u32; BURST_MAX],
    frags: FirstFragments6,
}

/// What the stage does with a frame that is not IPv4.
enum NonIpv4 {
    /// An IPv6 packet to classify with this key.
    Key(Ipv6Key),
    /// Not the ACL's (ARP, IPv6 neighbour discovery, other EtherTypes): continues untouched.
    Pass,
    /// Malformed IPv6 (the parser's reason) or an RFC 3128 TCP fragment.
    Drop(DropReason),
}

impl Classify {
    /// A stage using `table`, counting into `hits` (which must have `table.slots()` entries).
    pub fn new(install: Install) -> Result<Classify, String> {
        if install.hits.len() != install.table.slots() {
            return Err(format!(
                "classify: {} counter slots for a table of {}",
                install.hits.len(),
                install.table.slots()
            ));
        }
        Ok(Classify {
            table: install.table,
            hits: install.hits,
            keys: Box::new([Ipv4Key::default(); BURST_MAX]),
            idx: [0; BURST_MAX],
            results: [0; BURST_MAX],
            v6: Box::new(Ipv6Side {
                keys: [Ipv6Key::default(); BURST_MAX],
                idx: [0; BURST_MAX],
                results: [0; BURST_MAX],
                frags: FirstFragments6::default(),
            }),
            tally: Tally::new(),
            frags: FirstFragments::default(),
        })
    }

    /// The burst's frames that the IPv4 pass left alone (bit i of `others`: packet i, no
    /// verdict, no IPV4 flag): IPv6 packets get their key and index in `v6`, the others pass
    /// or get their drop verdict. Returns the number of IPv6 keys.
    #[inline]
    fn ipv6_keys(
        &mut self,
        pkts: &[Mbuf],
        verdicts: &mut [Verdict],
        others: u64,
        clock: (u64, u64),
    ) -> usize {
        let mut n6 = 0;
        let mut bits = others;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let (m, v) = (&pkts[i], &mut verdicts[i]);
            match self.non_ipv4(m, clock) {
                NonIpv4::Key(k) => {
                    self.v6.keys[n6] = k;
                    self.v6.idx[n6] = i as u8;
                    n6 += 1;
                }
                NonIpv4::Pass => {}
                NonIpv4::Drop(r) => *v = Verdict::Drop(r),
            }
        }
        n6
    }

    /// A frame that is not IPv4: IPv6 gets its key (validated by the wire module's parser,
    /// fragments through the memo), the rest passes.
    #[inline]
    fn non_ipv4(&mut self, m: &Mbuf, (now, frag_ttl): (u64, u64)) -> NonIpv4 {
        let data = m.data();
        if data.get(12..14) != Some(&ether::ethertype::IPV6.to_be_bytes()[..]) {
            return NonIpv4::Pass;
        }
        let info = match ipv6::validate(&data[ether::HEADER_LEN..]) {
            Ok(i) => i,
            Err(r) => return NonIpv4::Drop(r),
        };
        if crate::wire::ndp::is_nd(&info) {
            return NonIpv4::Pass;
        }
        let (p, sp, dp) = if info.frag == Frag::No {
            (info.upper, info.sport, info.dport)
        } else {
            match self.v6.frags.key(&info, now, frag_ttl) {
                Frag6::Flow(p, sp, dp) => (p, sp, dp),
                Frag6::TcpOffset1 => return NonIpv4::Drop(DropReason::AclTcpFragOffset1),
            }
        };
        NonIpv4::Key(Ipv6Key::new(
            p,
            info.src,
            info.dst,
            sp,
            dp,
            m.meta().in_port,
        ))
    }

    /// Classifies at most [`BURST_MAX`] packets (the scratch arrays' size).
    /// `now`, `frag_ttl`: TSC and the fragment memo's lifetime in ticks.
    #[inline]
    fn classify_burst(
        &mut self,
        pkts: &mut [Mbuf],
        verdicts: &mut [Verdict],
        (now, frag_ttl): (u64, u64),
    ) {
        debug_assert!(pkts.len() <= BURST_MAX);
        let (n, others) = self.ipv4_pass(pkts, verdicts, (now, frag_ttl));
        if others != 0 {
            // Frames that are not IPv4: out of this function, which stays the IPv4 path.
            self.with_non_ipv4(pkts, verdicts, (n, others), (now, frag_ttl));
            return;
        }
        if n == 0 {
            return;
        }
        // The IPv4-only burst. This is `settle` written out: with the call (even inlined) the
        // stage measured 2-5 cycles/packet slower on IPv4 traffic (classify_bench).
        let table = &*self.table;
        table.acl.classify(&self.keys[..n], &mut self.results[..n]);
        let results = &self.results[..n];
        let first = results[0];
        // Whole burst on one rule (or the default: the common case of a rule set the traffic
        // misses): one action, one counter update, no per-packet tally.
        if results.iter().fold(0, |acc, &r| acc | (r ^ first)) == 0 {
            let slot = slot_of(table, first);
            let a = table.actions[slot as usize];
            let mut bytes = 0u64;
            for &i in &self.idx[..n] {
                let m = &mut pkts[i as usize];
                bytes += u64::from(m.pkt_len());
                if a.deny {
                    verdicts[i as usize] = Verdict::Drop(DropReason::AclDeny);
                } else {
                    m.meta_mut().class = a.class;
                }
            }
            let h = &self.hits[slot as usize];
            h.packets.add(n as u64);
            h.bytes.add(bytes);
            return;
        }
        let tally = &mut self.tally;
        tally.n = 0;
        apply(table, tally, (results, &self.idx[..n]), pkts, verdicts);
        tally.flush(&self.hits);
    }

    /// The parse pass: every IPv4 packet's key into `keys[..n]` (burst index in `idx`), drop
    /// verdicts for malformed IPv4; returns n and the frames that are not IPv4 (bit i: packet
    /// i, left without verdict and without the IPV4 flag, for [`Self::with_non_ipv4`]).
    #[inline(never)]
    fn ipv4_pass(
        &mut self,
        pkts: &mut [Mbuf],
        verdicts: &mut [Verdict],
        (now, frag_ttl): (u64, u64),
    ) -> (usize, u64) {
        let mut n = 0usize;
        let mut others = 0u64;
        for (i, (m, v)) in pkts.iter_mut().zip(verdicts.iter_mut()).enumerate() {
            let meta = m.meta();
            let parsed = meta.flags & flags::PARSED != 0;
            if !parsed {
                // The common frame (unfragmented TCP/UDP, 20-byte header) in a few loads; its
                // key straight from the parse, never a fragment.
                if let Some(p) = crate::parse::parse_plain(m.data(), m.pkt_len() as usize) {
                    let meta = m.meta_mut();
                    p.write(meta);
                    self.keys[n] = Ipv4Key::new(
                        p.proto,
                        p.src_ip,
                        p.dst_ip,
                        p.src_port,
                        p.dst_port,
                        meta.in_port,
                    );
                    self.idx[n] = i as u8;
                    n += 1;
                    continue;
                }
            }
            let mut key = if parsed {
                if meta.flags & flags::IPV4 == 0 {
                    // An earlier stage parsed it and it is not IPv4: seen after the loop.
                    others |= 1 << i;
                    continue;
                }
                key_of(meta)
            } else {
                match crate::parse::parse_ipv4_frame(m.data(), m.pkt_len() as usize) {
                    Ok(p) => {
                        // The key straight from the parse (not read back from the metadata).
                        let meta = m.meta_mut();
                        p.write(meta);
                        Ipv4Key::new(
                            p.proto,
                            p.src_ip,
                            p.dst_ip,
                            p.src_port,
                            p.dst_port,
                            meta.in_port,
                        )
                    }
                    // IPv6 is classified in its own context (keyed after the loop); ARP and
                    // other EtherTypes are not the ACL's business.
                    Err(DropReason::NotIpv4) => {
                        others |= 1 << i;
                        continue;
                    }
                    Err(r) => {
                        *v = Verdict::Drop(r);
                        continue;
                    }
                }
            };
            let meta = m.meta();
            if meta.flags & flags::FRAG != 0 {
                let ip = m.data().get(meta.l3_off as usize..).unwrap_or(&[]);
                match self.frags.key(meta, ip, now, frag_ttl) {
                    FragPorts::Ports(sp, dp) => {
                        key =
                            Ipv4Key::new(meta.proto, meta.src_ip, meta.dst_ip, sp, dp, meta.in_port)
                    }
                    FragPorts::Unknown => {}
                    FragPorts::TcpOffset1 => {
                        *v = Verdict::Drop(DropReason::AclTcpFragOffset1);
                        continue;
                    }
                }
            }
            self.keys[n] = key;
            self.idx[n] = i as u8;
            n += 1;
        }
        (n, others)
    }

    /// The end of a burst with frames that are not IPv4 (`keys[..n]` are the IPv4 keys):
    /// IPv6 keys built and classified in their own context, each family's results applied;
    /// in a mixed burst both into one tally (a rule of both families has one counter).
    #[inline(never)]
    fn with_non_ipv4(
        &mut self,
        pkts: &mut [Mbuf],
        verdicts: &mut [Verdict],
        (n, others): (usize, u64),
        clock: (u64, u64),
    ) {
        let n6 = self.ipv6_keys(pkts, verdicts, others, clock);
        let table = &*self.table;
        if n6 == 0 {
            if n > 0 {
                table.acl.classify(&self.keys[..n], &mut self.results[..n]);
                settle(
                    table,
                    &self.hits,
                    &mut self.tally,
                    (&self.results[..n], &self.idx[..n]),
                    pkts,
                    verdicts,
                );
            }
            return;
        }
        table
            .acl6
            .classify(&self.v6.keys[..n6], &mut self.v6.results[..n6]);
        if n == 0 {
            settle(
                table,
                &self.hits,
                &mut self.tally,
                (&self.v6.results[..n6], &self.v6.idx[..n6]),
                pkts,
                verdicts,
            );
            return;
        }
        table.acl.classify(&self.keys[..n], &mut self.results[..n]);
        let tally = &mut self.tally;
        tally.n = 0;
        apply(
            table,
            tally,
            (&self.results[..n], &self.idx[..n]),
            pkts,
            verdicts,
        );
        apply(
            table,
            tally,
            (&self.v6.results[..n6], &self.v6.idx[..n6]),
            pkts,
            verdicts,
        );
        tally.flush(&self.hits);
    }
}

/// The slot of a result: the userdata values we assigned (1..=rules) or 0; anything else
/// would be a DPDK bug, treated as the default action rather than trusted as an index.
#[inline(always)]
fn slot_of(table: &AclTable, r: u32) -> u32 {
    if (r as usize) < table.actions.len() {
        r
    } else {
        0
    }
}

/// Applies one family's results (`results[j]` for packet `idx[j]`) and counts them.
#[inline(always)]
fn settle(
    table: &AclTable,
    hits: &[Hits],
    tally: &mut Tally,
    (results, idx): (&[u32], &[u8]),
    pkts: &mut [Mbuf],
    verdicts: &mut [Verdict],
) {
    let first = results[0];
    // Whole burst on one rule (or the default: the common case of a rule set the traffic
    // misses): one action, one counter update, no per-packet tally.
    if results.iter().fold(0, |acc, &r| acc | (r ^ first)) == 0 {
        let slot = slot_of(table, first);
        let a = table.actions[slot as usize];
        let mut bytes = 0u64;
        for &i in idx {
            let m = &mut pkts[i as usize];
            bytes += u64::from(m.pkt_len());
            if a.deny {
                verdicts[i as usize] = Verdict::Drop(DropReason::AclDeny);
            } else {
                m.meta_mut().class = a.class;
            }
        }
        let h = &hits[slot as usize];
        h.packets.add(idx.len() as u64);
        h.bytes.add(bytes);
        return;
    }
    tally.n = 0;
    apply(table, tally, (results, idx), pkts, verdicts);
    tally.flush(hits);
}

/// Applies results packet by packet into `tally`.
#[inline(always)]
fn apply(
    table: &AclTable,
    tally: &mut Tally,
    (results, idx): (&[u32], &[u8]),
    pkts: &mut [Mbuf],
    verdicts: &mut [Verdict],
) {
    for (&r, &i) in results.iter().zip(idx) {
        let slot = slot_of(table, r);
        let i = i as usize;
        let a = table.actions[slot as usize];
        let m = &mut pkts[i];
        if a.deny {
            verdicts[i] = Verdict::Drop(DropReason::AclDeny);
        } else {
            m.meta_mut().class = a.class;
        }
        tally.add(slot, u64::from(m.pkt_len()));
    }
}

/// The ACL key of a parsed IPv4 packet from its metadata (the parser's flow key plus the
/// ingress port). Non-first fragments have ports 0, as the parser leaves them (the stage then
/// puts their first fragment's ports in, see [`frag`]). For ICMP the parser's convention
/// applies: source port = query identifier, destination port = `type << 8 | code`.
#[inline]
pub fn key_of(p: &PktMeta) -> Ipv4Key {
    Ipv4Key::new(
        p.proto, p.src_ip, p.dst_ip, p.src_port, p.dst_port, p.in_port,
    )
}

/// Per-burst tally of hits: distinct slots in order of first hit.
struct Tally {
    slot: [u32; BURST_MAX],
    packets: [u32; BURST_MAX],
    bytes: [u64; BURST_MAX],
    n: usize,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            slot: [0; BURST_MAX],
            packets: [0; BURST_MAX],
            bytes: [0; BURST_MAX],
            n: 0,
        }
    }

    /// Writes the tally into the counters.
    #[inline]
    fn flush(&self, hits: &[Hits]) {
        for j in 0..self.n {
            let h = &hits[self.slot[j] as usize];
            h.packets.add(u64::from(self.packets[j]));
            h.bytes.add(self.bytes[j]);
        }
    }

    #[inline]
    fn add(&mut self, slot: u32, bytes: u64) {
        // Bursts usually hit one or a few rules: check the last one first.
        let j = if self.n > 0 && self.slot[self.n - 1] == slot {
            self.n - 1
        } else if let Some(j) = self.slot[..self.n].iter().position(|&s| s == slot) {
            j
        } else {
            let j = self.n;
            self.slot[j] = slot;
            self.packets[j] = 0;
            self.bytes[j] = 0;
            self.n += 1;
            j
        };
        self.packets[j] += 1;
        self.bytes[j] += bytes;
    }
}

impl Stage for Classify {
    fn name(&self) -> &'static str {
        "classify"
    }

    fn changes_length(&self) -> bool {
        false
    }

    fn needs_clock(&self) -> bool {
        false
    }

    fn process(&mut self, ctx: &mut StageCtx<'_>, pkts: &mut [Mbuf], verdicts: &mut [Verdict]) {
        let clock = (ctx.now, frag::FRAG_TTL_S * ctx.tsc_hz);
        // The runtime hands at most BURST_MAX packets; longer slices are classified in chunks
        // rather than trusted to fit the scratch arrays.
        for (p, v) in pkts
            .chunks_mut(BURST_MAX)
            .zip(verdicts.chunks_mut(BURST_MAX))
        {
            self.classify_burst(p, v, clock);
        }
    }

    fn control(
        &mut self,
        msg: Box<dyn Any + Send>,
    ) -> Result<Box<dyn Any + Send>, Box<dyn Any + Send>> {
        let inst = msg.downcast::<Install>()?;
        if inst.hits.len() != inst.table.slots() {
            return Err(inst);
        }
        let Install { table, hits } = *inst;
        let old = Install {
            table: std::mem::replace(&mut self.table, table),
            hits: std::mem::replace(&mut self.hits, hits),
        };
        Ok(Box::new(old))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: u32, priority: i64) -> TableRule {
        TableRule {
            id,
            m: Match::default(),
            priority,
            action: Action::PERMIT,
        }
    }

    #[test]
    fn priorities_are_distinct_higher_first_then_list_order() {
        let rules = [
            rule(1, 0),
            rule(2, 10),
            rule(3, 0),
            rule(4, 10),
            rule(5, -3),
        ];
        let p = acl_priorities(&rules);
        // Order of precedence: 2, 4 (priority 10, list order), 1, 3 (0), 5 (-3).
        assert_eq!(p, vec![3, 5, 2, 4, 1]);
        assert!(acl_priorities(&[]).is_empty());
    }

    #[test]
    fn tally_counts_each_slot_once() {
        let mut t = Tally::new();
        for (s, b) in [(3, 60), (3, 60), (0, 100), (3, 70), (7, 1)] {
            t.add(s, b);
        }
        assert_eq!(t.n, 3);
        assert_eq!(&t.slot[..3], &[3, 0, 7]);
        assert_eq!(&t.packets[..3], &[3, 1, 1]);
        assert_eq!(&t.bytes[..3], &[190, 100, 1]);
    }

    /// Ethernet + IPv4 (no options) + TCP header, 10.1.2.3:40000 -> 192.0.2.80:443, with the
    /// IPv4 header checksum 0x6c7b computed independently (RFC 1071 sum of the header words).
    const TCP_FRAME: [u8; 54] = [
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00, // Ethernet
        0x45, 0x00, 0x00, 40, 0x00, 0x01, 0x40, 0x00, 64, 6, 0x6c, 0x7b, // IPv4 ...
        10, 1, 2, 3, 192, 0, 2, 80, // ... addresses
        0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0x20, 0x00, 0, 0, 0,
        0, // TCP
    ];

    fn key_bytes(k: Ipv4Key) -> [u8; 20] {
        let (proto, s, d, sp, dp, ip) = k.fields();
        let mut b = [0u8; 20];
        b[0] = proto;
        b[4..8].copy_from_slice(&s.to_be_bytes());
        b[8..12].copy_from_slice(&d.to_be_bytes());
        b[12..14].copy_from_slice(&sp.to_be_bytes());
        b[14..16].copy_from_slice(&dp.to_be_bytes());
        b[16..20].copy_from_slice(&u32::from(ip).to_be_bytes());
        b
    }

    #[test]
    fn key_from_a_tcp_frame_fixture() {
        let p = crate::parse::parse_ipv4_frame(&TCP_FRAME, TCP_FRAME.len()).unwrap();
        let mut meta = PktMeta::fresh(3, 0);
        p.write(&mut meta);
        assert_eq!(
            key_bytes(key_of(&meta)),
            [
                6, 0, 0, 0, 10, 1, 2, 3, 192, 0, 2, 80, 0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 3
            ]
        );
        // A non-first fragment of the same datagram: no ports in the key.
        let mut frag = TCP_FRAME;
        frag[20..22].copy_from_slice(&[0x00, 0x10]); // offset 128 bytes, DF cleared
        let c = u16::from_be_bytes([frag[24], frag[25]]);
        // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), m = 0x4000 -> m' = 0x0010.
        let mut sum = u32::from(!c) + u32::from(!0x4000u16) + 0x0010;
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        frag[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        let p = crate::parse::parse_ipv4_frame(&frag, frag.len()).unwrap();
        let mut meta = PktMeta::fresh(0, 0);
        p.write(&mut meta);
        assert_eq!(
            key_of(&meta).fields(),
            (6, 0x0a01_0203, 0xc000_0250, 0, 0, 0)
        );
    }

    #[test]
    fn empty_table_applies_the_default_without_dpdk() {
        let t = AclTable::build(&[], Action::DENY).unwrap();
        assert_eq!(t.slots(), 1);
        let mut s = [9u32; 2];
        t.lookup(&[Ipv4Key::default(); 2], &mut s);
        assert_eq!(s, [0, 0]);
        assert_eq!(t.action(s[0]), Action::DENY);
        assert_eq!(new_hits(&t).len(), 1);
    }
}
