//! Every stage (xconnect, macswap, classify, forward, policer, nat) on bursts of arbitrary
//! frames through `pipeline::stage::Harness`, built as the daemon builds it: the stage of
//! one worker, booted from a configuration (`registry::parse`, each NF's `boot` and
//! `stage`) with two ports, lan 10.0.0.1/24 and wan 198.51.100.1/24. The input picks the
//! stage, then bursts of frames (mutated from valid UDP/TCP/ICMP/ARP frames, or raw bytes)
//! with the port they arrive on and clock steps, and housekeeping between bursts.
//!
//! Checks, what a user of the appliance would check: no panic; every packet gets a verdict a
//! one-worker chain can take (continue, a port that exists, a drop with its reason, held by
//! a stage that holds); a stage that says it never changes lengths does not; an output IPv4
//! header whose input header verified verifies (and for NAT every checksum: smoltcp);
//! packets the stage originates (ARP, ICMP) have correct checksums and leave by an existing
//! port; every held packet is accounted for (forward: held = released + expired + freed at
//! shutdown); and once everything is freed the mbuf pool is whole again (no mbuf leaked).
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};

use appliance::config::Config;
use appliance::module::StageEnv;
use appliance::nf::plane::ControlPlane;
use arbitrary::{Arbitrary, Unstructured};
use dpdk::{Mbuf, PktMeta};
use libfuzzer_sys::fuzz_target;
use pollfwd_nf::forward::{Forward, FwdShared, StaticNeighbor, StaticNeighbor6};
use pollfwd_pipeline::stage::Harness;
use pollfwd_pipeline::{DropReason, Stage, Verdict};

const CONFIG: &str = r#"
[eal]
main_lcore = 0

[[port]]
name = "lan"
device = "net_null0"
address = ["10.0.0.1/24", "2001:db8:1::1/64"]
ra = true

[[port]]
name = "wan"
device = "net_null1"
address = ["198.51.100.1/24", "2001:db8:2::1/64"]
mss_clamp = 1360

[[lcore]]
id = 1
rx = [{ port = "lan" }]
stages = ["classify", "nat", "policer", "forward"]

[[lcore]]
id = 2
rx = [{ port = "wan" }]
stages = ["macswap", "xconnect"]

[xconnect]
pairs = [["lan", "wan"]]

[classify]
default = "permit"
classes = ["bulk"]
rules = [
  { proto = "icmp", src = "10.0.0.66/32", action = "deny" },
  { proto = "udp", dport = "53", action = "permit", class = "bulk" },
  { proto = "tcp", dport = "1-1023", src = "192.0.2.0/24", action = "deny" },
  { proto = "udp", dst = "2001:db8:99::/48", dport = "53", action = "deny" },
]

[nat]
inside = ["lan"]
outside = ["wan"]
pool = ["198.51.100.16/30"]
port_range = [20000, 20063]
max_sessions = 64
static = [{ outside = "198.51.100.20:443", inside = "10.0.0.5:8443", proto = "tcp" }]

[policer]
policers = [
  { name = "bulk", kind = "srtcm", cir = 1000, cbs = 300, ebs = 300, bind = { class = "bulk" } },
]

[forward]
routes = [
  { prefix = "0.0.0.0/0", via = "198.51.100.254" },
  { prefix = "192.0.2.0/24", via = "198.51.100.253" },
  { prefix = "203.0.113.0/24", via = "10.0.0.254" },
  { prefix = "2001:db8:99::/48", via = "2001:db8:2::fe" },
  { prefix = "::/0", via = "fe80::1", port = "wan" },
]
neighbors = [{ address = "198.51.100.254", mac = "02:00:00:00:01:fe", port = "wan" }]
proxy_arp = [{ prefix = "198.51.100.16/30", port = "wan" }]
"#;

const STAGES: [&str; 6] = [
    "xconnect", "macswap", "classify", "forward", "policer", "nat",
];
const PORT_IDS: [u16; 2] = [0, 1];
const MACS: [[u8; 6]; 2] = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]];
const MTUS: [u16; 2] = [1500, 1500];
const TSC_HZ: u64 = 1_000_000_000;

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| {
        appliance::registry::parse("fuzz-stages.toml", CONFIG)
            .map_err(|e| e.to_string())
            .expect("the stage targets' configuration")
            .0
    })
}

/// Every NF booted once from the configuration (tables compiled: ACL, LPM, meters).
fn plane() -> &'static Mutex<ControlPlane> {
    static P: OnceLock<Mutex<ControlPlane>> = OnceLock::new();
    P.get_or_init(|| {
        pollfwd_fuzz::pool();
        let c = config();
        let loaded = appliance::config::Loaded {
            path: "fuzz-stages.toml".into(),
            text: CONFIG.into(),
            config: c.clone(),
            warnings: Vec::new(),
        };
        let mut plane = ControlPlane::new(loaded);
        for nf in appliance::registry::ALL {
            nf.boot(&mut plane, &env(), true).expect("boot");
        }
        Mutex::new(plane)
    })
}

fn env() -> StageEnv<'static> {
    StageEnv {
        config: config(),
        iface_ids: &PORT_IDS,
        iface_macs: &MACS,
        iface_mtus: &MTUS,
        worker: 0,
        lcore: 1,
        tsc_hz: TSC_HZ,
    }
}

/// A fresh stage `name` of worker 0 from the booted tables; forward gets fresh shared state
/// too (its neighbour table learns from what the input sends). Returns the forward stage's
/// shared state for its counters.
fn build(name: &str) -> (Box<dyn Stage>, Option<Arc<FwdShared>>) {
    let mut plane = plane().lock().unwrap_or_else(|e| e.into_inner());
    if name == "forward" {
        let (old, table) = plane.forward.init.clone().expect("forward booted");
        let neighbors = [StaticNeighbor {
            ip: u32::from_be_bytes([198, 51, 100, 254]),
            mac: [2, 0, 0, 0, 1, 0xfe],
            port: 1,
        }];
        let neighbors6 = [StaticNeighbor6 {
            ip: 0x2001_0db8_0002_0000_0000_0000_0000_00fe,
            mac: [2, 0, 0, 0, 1, 0xfe],
            port: 1,
        }];
        let shared = FwdShared::new(
            old.ifaces.clone(),
            old.proxy.to_vec(),
            &neighbors,
            &neighbors6,
            old.params,
            TSC_HZ,
        )
        .expect("forward shared state");
        let shared = Arc::new(shared);
        return (
            Box::new(Forward::new(shared.clone(), table, 0)),
            Some(shared),
        );
    }
    let nf = appliance::registry::get(name).expect("stage");
    (nf.stage(&mut plane, &env()).expect("stage"), None)
}

#[derive(Debug, Arbitrary)]
struct Burst {
    port: bool,
    clock_ms: u16,
    housekeeping: bool,
    frames: Vec<Frame>,
}

#[derive(Debug, Arbitrary)]
struct Frame {
    base: u8,
    src: u8,
    dst: u8,
    /// Byte changes: (position, value).
    edits: Vec<(u8, u8)>,
    cut: Option<u8>,
    raw: Option<Vec<u8>>,
}

const ADDRS: [[u8; 4]; 8] = [
    [10, 0, 0, 2],
    [10, 0, 0, 5],
    [10, 0, 0, 66],
    [10, 0, 0, 1],
    [198, 51, 100, 1],
    [198, 51, 100, 17],
    [198, 51, 100, 20],
    [192, 0, 2, 7],
];

fn frame(f: &Frame) -> Vec<u8> {
    use pollfwd_nf::nat::testpkt;
    use std::net::Ipv4Addr;
    if let Some(raw) = &f.raw {
        return raw.iter().copied().take(1514).collect();
    }
    let s = Ipv4Addr::from(ADDRS[f.src as usize % ADDRS.len()]);
    let d = Ipv4Addr::from(ADDRS[f.dst as usize % ADDRS.len()]);
    let mut v = match f.base % 6 {
        0 => testpkt::udp((s, 1000), (d, 53), b"query"),
        1 => testpkt::tcp((s, 1001), (d, 443), 0x02, 1, b""),
        2 => testpkt::icmp_echo(s, d, 7, 1, false),
        3 => testpkt::udp((s, 1002), (d, 9), &[0u8; 64]),
        4 => arp(s, d, f.src & 1 == 0),
        _ => {
            let about = testpkt::udp((d, 1000), (s, 53), b"x");
            testpkt::icmp_error(s, d, 3, 3, &about, 8)
        }
    };
    for (p, x) in &f.edits {
        let i = *p as usize % v.len();
        v[i] = *x;
    }
    if let Some(c) = f.cut {
        v.truncate(c as usize);
    }
    v
}

/// An ARP request (or reply) from `s` about `d`.
fn arp(s: std::net::Ipv4Addr, d: std::net::Ipv4Addr, request: bool) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 0x0a]);
    f.extend_from_slice(&[
        0x08,
        0x06,
        0,
        1,
        0x08,
        0,
        6,
        4,
        0,
        if request { 1 } else { 2 },
    ]);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 0x0a]);
    f.extend_from_slice(&s.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&d.octets());
    f
}

fn mbuf(pool: dpdk::Mempool, bytes: &[u8], port: u16, now: u64) -> Option<Mbuf> {
    let mut m = pool.alloc()?;
    if !m.set_len(bytes.len() as u16) {
        return None;
    }
    m.data_mut().copy_from_slice(bytes);
    *m.meta_mut() = PktMeta::fresh(port, now);
    Some(m)
}

/// An output frame's checksums, given its input's.
fn check_output(stage: &str, input: &[u8], out: &[u8]) {
    if pollfwd_fuzz::ipv4_header_ok(input) == Some(true) {
        assert_eq!(
            pollfwd_fuzz::ipv4_header_ok(out),
            Some(true),
            "{stage}: output IPv4 header checksum wrong:\n in  {input:02x?}\n out {out:02x?}"
        );
    }
    if stage == "nat" && pollfwd_fuzz::checksums_ok(input).is_ok() {
        if let Err(e) = pollfwd_fuzz::checksums_ok(out) {
            panic!("nat: {e}:\n in  {input:02x?}\n out {out:02x?}");
        }
    }
}

/// One fuzz input's run of a stage: what it held, gave back and counted.
struct Run<'a> {
    name: &'static str,
    stage: Box<dyn Stage>,
    h: Harness,
    /// Packets that left (the NIC frees them): kept a while so the pool is really used.
    keep: Vec<Mbuf>,
    inputs: Vec<Vec<u8>>,
    held: u64,
    given_back: u64,
    _p: std::marker::PhantomData<&'a ()>,
}

impl Run<'_> {
    /// One burst through the stage; `inputs[i]` is packet i's frame as received (None for
    /// packets given back by the stage, which have been through it before).
    fn burst(&mut self, mut pkts: Vec<Mbuf>, inputs: &[Option<Vec<u8>>], port: u16, now: u64) {
        let name = self.name;
        if pkts.is_empty() {
            return;
        }
        let mut verdicts = vec![Verdict::Continue; pkts.len()];
        let all = self.h.process(
            self.stage.as_mut(),
            &mut pkts,
            &mut verdicts,
            (now, port, true),
        );
        if let Some(v) = all {
            verdicts.iter_mut().for_each(|x| *x = v);
        }
        for ((m, v), input) in pkts.into_iter().zip(verdicts).zip(inputs) {
            match v {
                Verdict::Continue | Verdict::Tx(_) => {
                    if let Verdict::Tx(p) = v {
                        assert!(PORT_IDS.contains(&p), "{name}: Tx to port {p}");
                    }
                    if let Some(input) = input {
                        if !self.stage.changes_length() {
                            assert_eq!(m.data().len(), input.len(), "{name}: length changed");
                        }
                        check_output(name, input, m.data());
                    }
                    self.keep.push(m);
                }
                Verdict::Drop(_) => drop(m),
                Verdict::Held => {
                    assert!(name == "forward" || name == "nat", "{name} held a packet");
                    self.held += 1;
                    self.stage.adopt(m);
                }
                Verdict::Handoff(w) => panic!("{name}: hand-off to worker {w} of 1"),
            }
        }
        self.after(now);
    }

    /// What follows a burst or a housekeeping pass: packets sent by the stage are checked,
    /// packets it gave back go through it again (as the worker does).
    fn after(&mut self, now: u64) {
        self.check_originated();
        let mut later = self.h.take_later();
        if later.is_empty() {
            return;
        }
        let mut pkts = Vec::new();
        later.dispatch(|_, m| {
            pkts.push(m);
            None
        });
        self.given_back += pkts.len() as u64;
        let none = vec![None; pkts.len()];
        // Given back packets carry their port in their metadata.
        self.burst(pkts, &none, PORT_IDS[0], now);
    }

    fn check_originated(&mut self) {
        let name = self.name;
        for m in self.h.take_originated() {
            let out_port = m.meta().out_port;
            assert!(
                PORT_IDS.contains(&out_port),
                "{name}: sent to port {out_port}"
            );
            let d = m.data();
            // Released held packets are forwarded frames (the same addresses and payload as
            // an input): their header is checked like any output's; what the appliance
            // builds itself (ARP, ICMP) is checked whole.
            assert_ne!(
                pollfwd_fuzz::ipv4_header_ok(d),
                Some(false),
                "{name}: sent a bad IPv4 header: {d:02x?}"
            );
            let released = d.len() >= 34
                && self
                    .inputs
                    .iter()
                    .any(|i| i.len() == d.len() && i[26..] == d[26..]);
            if !released && let Err(e) = pollfwd_fuzz::checksums_ok(d) {
                panic!("{name}: originated frame: {e}: {d:02x?}");
            }
            self.keep.push(m);
        }
    }
}

fn run(data: &[u8]) {
    let pool = pollfwd_fuzz::pool();
    let base_in_use = pool.in_use();
    let mut u = Unstructured::new(data);
    let Ok(which) = u8::arbitrary(&mut u) else {
        return;
    };
    let name = STAGES[which as usize % STAGES.len()];
    let (stage, fwd) = build(name);
    let mut r = Run {
        name,
        stage,
        h: Harness::new(pool, TSC_HZ),
        keep: Vec::new(),
        inputs: Vec::new(),
        held: 0,
        given_back: 0,
        _p: std::marker::PhantomData,
    };
    let mut now = dpdk::rdtsc();
    for _ in 0..16 {
        let Ok(b) = Burst::arbitrary(&mut u) else {
            break;
        };
        now += b.clock_ms as u64 * (TSC_HZ / 1000);
        let port = PORT_IDS[b.port as usize];
        let frames: Vec<Vec<u8>> = b.frames.iter().take(32).map(frame).collect();
        r.inputs.extend(frames.iter().cloned());
        let mut pkts = Vec::new();
        let mut inputs = Vec::new();
        for f in frames {
            if let Some(m) = mbuf(pool, &f, port, now) {
                pkts.push(m);
                inputs.push(Some(f));
            }
        }
        r.burst(pkts, &inputs, port, now);
        if b.housekeeping {
            r.h.housekeeping(r.stage.as_mut(), now);
            r.after(now);
        }
        // What leaves is freed by the NIC: keep the pool from running dry.
        if r.keep.len() > 256 {
            r.keep.clear();
        }
    }
    // Time passes and the worker stops: what the stage holds is freed and counted, and so
    // is what it gives back that no pass takes any more (as the worker does).
    now += 10 * TSC_HZ;
    r.h.housekeeping(r.stage.as_mut(), now);
    r.after(now);
    r.h.shutdown(r.stage.as_mut(), now);
    r.check_originated();
    let mut stranded = r.h.take_later();
    let mut drops: Vec<(DropReason, u64)> = vec![(DropReason::Shutdown, stranded.len() as u64)];
    stranded.free_all();
    drops.extend(r.h.take_drops().into_iter().map(|(d, n)| (d, n as u64)));
    let dropped = |reasons: &[DropReason]| -> u64 {
        drops
            .iter()
            .filter(|(d, _)| reasons.contains(d))
            .map(|(_, n)| n)
            .sum()
    };
    if let Some(shared) = fwd {
        let st = shared.stats();
        let s = &st[0].1;
        assert_eq!(
            s.held.get(),
            r.held,
            "forward: held counter vs held verdicts"
        );
        assert_eq!(
            s.held.get(),
            s.released.get() + s.held_expired.get() + dropped(&[DropReason::Shutdown]),
            "forward: held != released + expired + freed at shutdown"
        );
    }
    if name == "nat" {
        let gone = dropped(&[
            DropReason::NatFragment,
            DropReason::NatFragmentTimeout,
            DropReason::Shutdown,
        ]);
        assert_eq!(
            r.held,
            r.given_back + gone,
            "nat: held fragments != given back + dropped ({drops:?})"
        );
    }
    drop(r);
    assert_eq!(pool.in_use(), base_in_use, "{name}: mbufs leaked");
}

fuzz_target!(|data: &[u8]| run(data));
