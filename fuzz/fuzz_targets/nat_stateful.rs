//! NAT44 as a state machine: one worker's `NatCore` (configuration from the input: pool,
//! port range, table size, filtering, timeouts, per-host limit, LRU reclaim) replays a
//! sequence of steps decoded from the input: frames from the inside or the outside (TCP, UDP,
//! ICMP queries, ICMP errors about earlier translated packets, fragments, corrupted frames,
//! raw bytes), clock steps, housekeeping, expiry and static mapping changes. Addresses and
//! ports come from small sets so that flows collide, tables fill and ports run out.
//!
//! After every step: the tables are consistent (`NatCore::check_invariants`), the counters
//! add up (created - expired - reclaimed - purged = sessions), a single worker never hands
//! off; a translated frame whose checksums verified verifies again (smoltcp); and a
//! translation is reversible: the reply to a translated TCP/UDP packet or ICMP echo request
//! comes back translated to the original endpoints.
#![no_main]

use std::net::Ipv4Addr;
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use dpdk::PktMeta;
use libfuzzer_sys::fuzz_target;
use pollfwd_nf::nat::det::{DetMap, DetTable};
use pollfwd_nf::nat::pkt::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use pollfwd_nf::nat::statics::StaticTable;
use pollfwd_nf::nat::testpkt::{self, verify};
use pollfwd_nf::nat::{Filtering, NatCore, NatParams, StaticMapping, Timeouts};
use pollfwd_pipeline::Verdict;

const IN: u16 = 0;
const OUT: u16 = 1;
/// A port that is neither inside nor outside (packets pass untouched).
const OTHER: u16 = 2;

fn a(x: [u8; 4]) -> u32 {
    u32::from_be_bytes(x)
}

/// Inside hosts, remote hosts, pool addresses, static outside addresses: every address a
/// frame may carry (small sets, so that flows meet).
const ADDRS: [[u8; 4]; 15] = [
    [10, 0, 0, 1],
    [10, 0, 0, 2],
    [10, 0, 0, 3],
    [10, 0, 0, 5],
    [10, 0, 0, 6],
    [192, 0, 2, 1],
    [192, 0, 2, 2],
    [192, 0, 2, 3],
    [198, 51, 100, 10],
    [198, 51, 100, 11],
    [198, 51, 100, 12],
    [203, 0, 113, 5],
    [203, 0, 113, 6],
    [172, 16, 0, 1],
    // The deterministic map's outside address (when the setup has one).
    [198, 51, 100, 20],
];
const POOL: [[u8; 4]; 3] = [[198, 51, 100, 10], [198, 51, 100, 11], [198, 51, 100, 12]];
const PORT_LO: u16 = 20000;
const PORTS: [u16; 8] = [1000, 1001, 53, 80, 443, 8443, 5353, 0];
/// The appliance's inside network: never translated (`no_nat`).
const NO_NAT: ([u8; 4], [u8; 4]) = ([172, 16, 0, 0], [255, 255, 0, 0]);

#[derive(Debug, Arbitrary)]
struct Setup {
    filtering: u8,
    max_sessions: u8,
    lru_reclaim: bool,
    per_host: u8,
    ports: u8,
    pool: u8,
    timeouts: [u16; 4],
    ttl_expiry_downstream: bool,
    expiry_budget: u8,
    statics: Vec<Static>,
    /// 0: no deterministic map; 1: 10.0.0.0/30 onto 198.51.100.20/32; 2: the same with
    /// stateless_inbound.
    det: u8,
    /// Port blocks of the pool: even = off, odd = blocks of 1 + block / 2 % 16 ports, up to
    /// 1 + block / 32 % 4 per host.
    block: u8,
}

#[derive(Debug, Arbitrary, Clone, Copy)]
struct Static {
    proto: u8,
    out: u8,
    out_port: u8,
    inside: u8,
    in_port: u8,
}

#[derive(Debug, Arbitrary)]
enum Step {
    Frame(Frame),
    /// An ICMP error about one of the last translated packets, from the other side.
    IcmpError {
        about: u8,
        ty: u8,
        code: u8,
        l4_bytes: u8,
        from: u8,
    },
    /// A translated packet again, with one byte changed (malformed or just different).
    Corrupt {
        which: u8,
        pos: u16,
        val: u8,
        port: u8,
    },
    Raw {
        port: u8,
        bytes: Vec<u8>,
    },
    Clock(u16),
    ClockBig(u32),
    Housekeeping,
    Expire(u8),
    StaticAdd(Static),
    StaticDel(u8),
}

#[derive(Debug, Arbitrary)]
struct Frame {
    port: u8,
    kind: u8,
    src: u8,
    dst: u8,
    sport: u16,
    dport: u16,
    flags: u8,
    /// Split into fragments (send the first, the second, or both).
    frag: u8,
    ttl: u8,
}

struct World {
    nat: NatCore,
    now: u32,
    statics: Vec<StaticMapping>,
    /// The last translated frames (output, and the port they came from).
    seen: Vec<(Vec<u8>, u16)>,
}

fn pick<T: Copy>(set: &[T], i: u8) -> T {
    set[i as usize % set.len()]
}

fn ip(x: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(x)
}

fn port_of(sel: u16) -> u16 {
    // Either a well-known port or one of the first dynamic ports (where mappings are).
    if sel & 0x8000 != 0 {
        PORT_LO + (sel & 0x3f)
    } else {
        PORTS[sel as usize % PORTS.len()]
    }
}

fn mapping(s: &Static) -> StaticMapping {
    let proto = match s.proto % 3 {
        0 => None,
        1 => Some(PROTO_TCP),
        _ => Some(PROTO_UDP),
    };
    let (op, ip) = if proto.is_none() {
        (0, 0)
    } else {
        (pick(&PORTS, s.out_port), pick(&PORTS, s.in_port))
    };
    StaticMapping {
        proto,
        // Static outside addresses: 203.0.113.5/6 (never the pool's).
        out_addr: a(pick(&ADDRS[11..13], s.out)),
        out_port: op,
        in_addr: a(pick(&ADDRS[..5], s.inside)),
        in_port: ip,
    }
}

impl World {
    fn new(s: &Setup) -> Option<World> {
        let pool: Vec<u32> = POOL[..1 + s.pool as usize % 3]
            .iter()
            .map(|x| a(*x))
            .collect();
        let mut statics = Vec::new();
        for m in s.statics.iter().take(4) {
            let mut v = statics.clone();
            v.push(mapping(m));
            if StaticTable::new(&v).is_ok() {
                statics = v;
            }
        }
        let t = |x: u16| 1 + x as u32 % 600_000;
        let p = NatParams {
            inside_ports: vec![IN],
            outside_ports: vec![OUT],
            pool,
            port_lo: PORT_LO,
            port_hi: PORT_LO + 1 + s.ports as u16 % 128,
            filtering: match s.filtering % 3 {
                0 => Filtering::EndpointIndependent,
                1 => Filtering::AddressDependent,
                _ => Filtering::AddressAndPortDependent,
            },
            timeouts: Timeouts {
                tcp_established: t(s.timeouts[0]),
                tcp_transitory: t(s.timeouts[1]),
                udp: t(s.timeouts[2]),
                icmp: t(s.timeouts[3]),
            },
            max_sessions: 1 + s.max_sessions as u32 % 64,
            lru_reclaim: s.lru_reclaim,
            max_sessions_per_host: s.per_host as u32 % 5,
            statics: Arc::new(StaticTable::new(&statics).ok()?),
            det: Arc::new(match s.det % 3 {
                0 => DetTable::default(),
                k => DetTable::new(&[DetMap::new(
                    (a([10, 0, 0, 0]), 30),
                    (a([198, 51, 100, 20]), 32),
                    k == 2,
                )
                .ok()?])
                .ok()?,
            }),
            // At most the range (one worker: its slice is the range).
            port_block: if s.block % 2 == 1 {
                (1 + (s.block / 2 % 16) as u32).min(2 + s.ports as u32 % 128)
            } else {
                0
            },
            blocks_per_host: 1 + s.block / 32 % 4,
            no_nat: vec![(a(NO_NAT.0), a(NO_NAT.1))],
            workers: vec![0],
            me: 0,
            seed: 7,
            expiry_budget: 1 + s.expiry_budget as u32 % 64,
            ttl_expiry_downstream: s.ttl_expiry_downstream,
        };
        Some(World {
            nat: NatCore::new(p, 0).expect("valid parameters"),
            now: 0,
            statics,
            seen: Vec::new(),
        })
    }

    /// Sends one frame; checks the verdict and checksums; remembers translations.
    fn send(&mut self, frame: &[u8], port: u16) -> (Verdict, Vec<u8>) {
        let mut f = frame.to_vec();
        let mut meta = PktMeta::fresh(port, 0);
        self.nat.set_now(self.now);
        // As the stage does: the fast path first, the general path for what it declines.
        let v = match self.nat.fast(&mut f, &mut meta, None) {
            Some(v) => v,
            None => self.nat.handle(&mut f, &mut meta),
        };
        self.nat.flush();
        assert_eq!(f.len(), frame.len());
        match v {
            Verdict::Continue => {
                if verify(frame).is_ok() {
                    if let Err(e) = verify(&f) {
                        panic!("{e} after translation:\n in  {frame:02x?}\n out {f:02x?}");
                    }
                }
                if f != frame {
                    assert!(
                        port == IN || port == OUT,
                        "a frame from port {port} changed"
                    );
                    self.seen.push((f.clone(), port));
                    if self.seen.len() > 8 {
                        self.seen.remove(0);
                    }
                }
            }
            Verdict::Drop(_) => {}
            other => panic!("one NAT worker gave {other:?}"),
        }
        self.check();
        (v, f)
    }

    fn check(&self) {
        if let Err(e) = self.nat.check_invariants() {
            panic!("NAT tables inconsistent: {e}");
        }
        let c = &self.nat.shared().counters;
        let gone = c.expired.get() + c.reclaimed.get() + c.purged.get();
        assert_eq!(
            c.created.get() - gone,
            self.nat.sessions() as u64,
            "created - expired - reclaimed - purged != sessions"
        );
    }

    /// A frame from the input's choices.
    fn build(&self, fr: &Frame) -> Vec<Vec<u8>> {
        let src = ip(pick(&ADDRS, fr.src));
        let dst = ip(pick(&ADDRS, fr.dst));
        let (sp, dp) = (port_of(fr.sport), port_of(fr.dport));
        let mut f = match fr.kind % 5 {
            0 | 1 => testpkt::udp((src, sp), (dst, dp), b"fuzz"),
            2 => testpkt::tcp((src, sp), (dst, dp), fr.flags & 0x3f, 1, b""),
            3 => testpkt::icmp_echo(src, dst, sp, 1, fr.flags & 1 == 1),
            _ => testpkt::udp_nocsum((src, sp), (dst, dp), b"fuzz-nocsum"),
        };
        if fr.ttl < 8 {
            // TTL 0..=7 (TTL expiry handling), checksum kept right.
            let mut p = smoltcp::wire::Ipv4Packet::new_unchecked(&mut f[14..]);
            p.set_hop_limit(fr.ttl);
            p.fill_checksum();
        }
        if fr.frag % 4 == 0 && f.len() > 14 + 20 + 8 {
            let (first, second) = testpkt::fragments(&f, 8, 0x4242);
            return match fr.frag / 4 % 3 {
                0 => vec![first],
                1 => vec![second],
                _ => vec![first, second],
            };
        }
        vec![f]
    }

    /// The reply to a translated frame, as the far end would send it; None when it has none.
    fn reply_to(out: &[u8]) -> Option<Vec<u8>> {
        let ipv = smoltcp::wire::Ipv4Packet::new_checked(&out[14..]).ok()?;
        if ipv.more_frags() || ipv.frag_offset() != 0 {
            return None;
        }
        let (s, sp, d, dp) = testpkt::endpoints(out);
        match ipv.next_header().into() {
            PROTO_UDP => Some(testpkt::udp((d, dp), (s, sp), b"reply")),
            PROTO_TCP => Some(testpkt::tcp((d, dp), (s, sp), 0x10, 7, b"")),
            PROTO_ICMP if ipv.payload().first() == Some(&8) => {
                Some(testpkt::icmp_echo(d, s, sp, 1, true))
            }
            _ => None,
        }
    }

    /// Reversibility: the reply to a translated packet is translated back to its original
    /// endpoints.
    fn check_reply(&mut self, input: &[u8], port: u16, out: &[u8]) {
        if out == input || verify(input).is_err() {
            return;
        }
        let (s0, sp0, d0, dp0) = testpkt::endpoints(input);
        let (s1, sp1, d1, dp1) = testpkt::endpoints(out);
        // Only plain translations: one side rewritten (a hairpinned packet has both).
        let hairpin = (s0, sp0) != (s1, sp1) && (d0, dp0) != (d1, dp1);
        let remote = if port == IN { d0 } else { s0 };
        let in_no_nat = u32::from(remote) & a(NO_NAT.1) == a(NO_NAT.0);
        // A remote that is itself one of our outside addresses is hairpinned both ways.
        // (Pool, static, and the deterministic map's outside address.)
        let ours = POOL.contains(&remote.octets())
            || ADDRS[11..13].contains(&remote.octets())
            || ADDRS[14] == remote.octets();
        if hairpin || in_no_nat || ours {
            return;
        }
        let Some(reply) = Self::reply_to(out) else {
            return;
        };
        let back = if port == IN { OUT } else { IN };
        let (v, r) = self.send(&reply, back);
        assert_eq!(
            v,
            Verdict::Continue,
            "the reply to a translation was refused:\n in    {input:02x?}\n out   {out:02x?}\n reply {reply:02x?}"
        );
        let (rs, rsp, rd, rdp) = testpkt::endpoints(&r);
        // For ICMP the "port" is the query identifier, the same both ways.
        let want = if input[23] == PROTO_ICMP {
            ((d0, sp0), (s0, 0))
        } else {
            ((d0, dp0), (s0, sp0))
        };
        assert_eq!(
            ((rs, rsp), (rd, rdp)),
            want,
            "reply not translated back:\n in    {input:02x?}\n out   {out:02x?}\n reply {r:02x?}"
        );
    }

    fn step(&mut self, st: Step) {
        match st {
            Step::Frame(fr) => {
                let port = match fr.port % 5 {
                    0 | 1 => IN,
                    2 | 3 => OUT,
                    _ => OTHER,
                };
                for f in self.build(&fr) {
                    let (v, out) = self.send(&f, port);
                    if v == Verdict::Continue {
                        self.check_reply(&f, port, &out);
                    }
                }
            }
            Step::IcmpError {
                about,
                ty,
                code,
                l4_bytes,
                from,
            } => {
                if self.seen.is_empty() {
                    return;
                }
                let (f, came) = self.seen[about as usize % self.seen.len()].clone();
                let (s, _, d, _) = testpkt::endpoints(&f);
                // The error comes from where the packet went (or a router on the way) and
                // goes back to its sender, through the port facing that side.
                let origin = if from & 1 == 0 {
                    d
                } else {
                    ip(pick(&ADDRS, from >> 1))
                };
                let ty = [3u8, 11, 12, 4][ty as usize % 4];
                let e = testpkt::icmp_error(origin, s, ty, code % 16, &f, l4_bytes as usize % 40);
                let port = if came == IN { OUT } else { IN };
                self.send(&e, port);
            }
            Step::Corrupt {
                which,
                pos,
                val,
                port,
            } => {
                if self.seen.is_empty() {
                    return;
                }
                let (mut f, came) = self.seen[which as usize % self.seen.len()].clone();
                let i = pos as usize % f.len();
                f[i] = val;
                let port = if port & 1 == 0 {
                    came
                } else {
                    OUT - came.min(1)
                };
                self.send(&f, port);
            }
            Step::Raw { port, bytes } => {
                self.send(&bytes, port as u16 % 3);
            }
            Step::Clock(ms) => self.now = self.now.wrapping_add(ms as u32),
            Step::ClockBig(ms) => self.now = self.now.wrapping_add(ms),
            Step::Housekeeping => {
                self.nat.set_now(self.now);
                self.nat.housekeeping();
                self.check();
            }
            Step::Expire(n) => {
                self.nat.set_now(self.now);
                self.nat.expire(n as u32);
                self.nat.flush();
                self.check();
            }
            Step::StaticAdd(s) => {
                let mut v = self.statics.clone();
                v.push(mapping(&s));
                if let Ok(t) = StaticTable::new(&v) {
                    self.nat.set_statics(Arc::new(t));
                    self.statics = v;
                }
                self.check();
            }
            Step::StaticDel(i) => {
                if !self.statics.is_empty() {
                    self.statics.remove(i as usize % self.statics.len());
                    let t = StaticTable::new(&self.statics).expect("a subset is valid");
                    self.nat.set_statics(Arc::new(t));
                }
                self.check();
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    // NAT_FUZZ_TRACE=1 prints what an input does (to understand a crash).
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let trace = *TRACE.get_or_init(|| std::env::var_os("NAT_FUZZ_TRACE").is_some());
    if trace {
        eprintln!("{setup:?}");
    }
    let Some(mut w) = World::new(&setup) else {
        return;
    };
    for _ in 0..64 {
        match Step::arbitrary(&mut u) {
            Ok(s) => {
                if trace {
                    eprintln!("{s:?}");
                }
                w.step(s)
            }
            Err(_) => break,
        }
        if u.is_empty() {
            break;
        }
    }
});
