//! NAT44 benchmark helper (used by bench/nat.sh):
//!
//! - `nat_bench pcap OUT N`: writes a pcap of N distinct inside UDP flows, 60-byte frames
//!   (4096 hosts 10.8.x.y, source ports from 1024), one frame per flow in a shuffled order, as
//!   the net_pcap `infinite_rx` source of the pollfwd harness;
//! - `nat_bench core [N...]`: drives the NAT core directly on frames in memory (no I/O) with
//!   N active sessions each (default 1k, 64k, 1M): creates the sessions, then times lookups
//!   in a random order, inside-to-outside and outside-to-inside, and prints ns and TSC cycles
//!   per packet and the table's bytes per session;
//! - `nat_bench churn [N...]`: new sessions on the NAT core in memory, every packet a new
//!   inside flow: N of them into an empty table of N sessions (creation), then N more with
//!   `lru_reclaim` (each reclaims the least recently used session: deletion + creation);
//!   prints ns per new session and sessions/s.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use dpdk::PktMeta;
use pollfwd_nf::nat::statics::StaticTable;
use pollfwd_nf::nat::testpkt;
use pollfwd_nf::nat::{Filtering, NatCore, NatParams};
use pollfwd_pipeline::Verdict;

const HOSTS: usize = 4096;

fn flow(f: usize) -> (Ipv4Addr, u16) {
    let h = f % HOSTS;
    (
        Ipv4Addr::new(10, 8, (h >> 8) as u8, (h & 255) as u8),
        1024 + (f / HOSTS) as u16,
    )
}

fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut x = seed | 1;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

fn remote() -> (Ipv4Addr, u16) {
    (Ipv4Addr::new(192, 0, 2, 1), 9)
}

fn write_pcap(out: &str, n: usize) {
    let frames = shuffled(n, 99).into_iter().map(|f| {
        let mut fr = testpkt::udp(flow(f), remote(), &[0u8; 18]);
        fr.truncate(60);
        fr
    });
    lab::pcap::write_frames(std::path::Path::new(out), frames).expect("write pcap");
}

/// Pool for N sessions: 64512 ports per address, 4096 hosts paired over 32 addresses.
fn params(n: usize) -> NatParams {
    NatParams {
        inside_ports: vec![0],
        outside_ports: vec![1],
        pool: (0..32)
            .map(|i| u32::from(Ipv4Addr::new(198, 51, 100, 32 + i)))
            .collect(),
        filtering: Filtering::EndpointIndependent,
        max_sessions: n as u32,
        statics: Arc::new(StaticTable::default()),
        seed: 5,
        ..NatParams::default()
    }
}

/// CPU time of this thread, ns (the machine is shared: wall time overstates).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0)
}

fn tsc_per_ns() -> f64 {
    let t = Instant::now();
    let c = dpdk::rdtsc();
    while t.elapsed().as_millis() < 200 {}
    (dpdk::rdtsc() - c) as f64 / t.elapsed().as_nanos() as f64
}

fn core(sizes: &[usize]) {
    let hz = tsc_per_ns();
    println!(
        "NAT core in memory, one thread, 60-byte UDP frames, lookups in random order; thread CPU time, cycles at the TSC rate ({hz:.2} GHz)"
    );
    println!(
        "{:>9} {:>10} {:>12} {:>12} {:>12} {:>12} {:>14}",
        "sessions", "direction", "ns/pkt", "cycles/pkt", "Mpps", "copy ns/pkt", "bytes/session"
    );
    for &n in sizes {
        let mut c = NatCore::new(params(n), 0).expect("nat core");
        let inside: Vec<Vec<u8>> = (0..n)
            .map(|f| testpkt::udp(flow(f), remote(), &[0u8; 18]))
            .collect();
        // Create the sessions; keep the translated frames to build the replies.
        let mut replies = Vec::with_capacity(n);
        for f in &inside {
            let mut fr = f.clone();
            let mut m = PktMeta::fresh(0, 0);
            assert_eq!(c.handle(&mut fr, &mut m), Verdict::Continue);
            let (x, xp, _, _) = testpkt::endpoints(&fr);
            replies.push(testpkt::udp(remote(), (x, xp), &[0u8; 18]));
        }
        c.flush();
        assert_eq!(c.sessions() as usize, n);

        let order = shuffled(n, 7);
        let passes = (4_000_000 / n).max(2);
        for (dir, frames, port, prefetch) in [
            ("in2out", &inside, 0u16, false),
            ("in2out+pf", &inside, 0u16, true),
            ("out2in", &replies, 1u16, false),
            ("out2in+pf", &replies, 1u16, true),
        ] {
            let mut buf = vec![0u8; 64];
            // Copy-only baseline (the frames are restored before each translation).
            let t = cpu_ns();
            for _ in 0..passes {
                for &i in &order {
                    let f = &frames[i];
                    buf[..f.len()].copy_from_slice(f);
                    std::hint::black_box(&mut buf);
                }
            }
            let copy_ns = (cpu_ns() - t) as f64 / (passes * n) as f64;
            let t = cpu_ns();
            let mut ok = 0usize;
            let mut bufs = vec![[0u8; 64]; 32];
            let metas = [PktMeta::fresh(port, 0); 32];
            for _ in 0..passes {
                for burst in order.chunks(32) {
                    // As the stage does: copy in (the rx), prefetch, translate.
                    for (k, &i) in burst.iter().enumerate() {
                        let f = &frames[i];
                        bufs[k][..f.len()].copy_from_slice(f);
                    }
                    if prefetch {
                        for (k, &i) in burst.iter().enumerate() {
                            c.prefetch_index(k, &bufs[k][..frames[i].len()], &metas[k]);
                        }
                        for k in 0..burst.len() {
                            c.prefetch_session(k);
                        }
                    }
                    for (k, &i) in burst.iter().enumerate() {
                        let mut m = metas[k];
                        let f = &mut bufs[k][..frames[i].len()];
                        // As the stage does: the fast path, else the general one.
                        let hash = if prefetch { c.hint_hash(k) } else { None };
                        let v = match c.fast(f, &mut m, hash) {
                            Some(v) => v,
                            None => c.handle(f, &mut m),
                        };
                        ok += (v == Verdict::Continue) as usize;
                    }
                    c.flush();
                }
            }
            let ns = (cpu_ns() - t) as f64 / (passes * n) as f64;
            let cyc = ns * hz;
            assert_eq!(ok, passes * n, "every packet translated");
            println!(
                "{:>9} {:>10} {:>12.1} {:>12.1} {:>12.2} {:>12.1} {:>14.1}",
                n,
                dir,
                ns - copy_ns,
                cyc - copy_ns * hz,
                1e3 / ns,
                copy_ns,
                c.bytes_per_session()
            );
        }
    }
    println!(
        "size_of::<Session>() = {} bytes",
        std::mem::size_of::<pollfwd_nf::nat::table::Session>()
    );
}

/// The lookup alone, as `bench/nat/rte_hash_cmp.c` does it with rte_hash: N 5-tuple keys ->
/// session, bursts of 32 in random order (hash, prefetch slot, prefetch session, compare
/// the key in the session), then read the session.
fn index(n: usize) {
    use pollfwd_nf::nat::table::{Index, Session, big_vec, key_hash};
    let hz = tsc_per_ns();
    let seed = 0x1234_5678_9abc_def1u64;
    let mut ix = Index::new(n);
    let mut sess = big_vec(n, Session::default());
    let key = |i: usize| (0x0a08_0000u32 | (i % 4096) as u32, (1024 + i / 4096) as u16);
    for (i, s) in sess.iter_mut().enumerate() {
        let (a, p) = key(i);
        s.in_addr = a;
        s.in_port = p;
        s.rem_addr = 0xc000_0201;
        s.rem_port = 9;
        s.proto = 17;
        ix.insert(key_hash(17, a, p, 0xc000_0201, 9, seed), i as u32);
    }
    let order = shuffled(n, 7);
    let passes = 4_000_000 / n + 1;
    let mut sum = 0u64;
    let mut hs = [0u64; 32];
    let t = cpu_ns();
    for _ in 0..passes {
        for burst in order.chunks_exact(32) {
            for (k, &i) in burst.iter().enumerate() {
                let (a, p) = key(i);
                hs[k] = key_hash(17, a, p, 0xc000_0201, 9, seed);
                ix.prefetch(hs[k]);
            }
            for h in &hs {
                if let Some(s) = sess.get(ix.peek(*h) as usize) {
                    dpdk::prefetch(s);
                }
            }
            for (k, &i) in burst.iter().enumerate() {
                let (a, p) = key(i);
                let hit = ix.find(hs[k], |j| {
                    let s = &sess[j as usize];
                    s.in_addr == a
                        && s.in_port == p
                        && s.rem_addr == 0xc000_0201
                        && s.rem_port == 9
                        && s.proto == 17
                });
                sum += hit
                    .map(|(_, j)| sess[j as usize].in_port as u64)
                    .unwrap_or(0);
            }
        }
    }
    let lookups = passes * (n / 32 * 32);
    let ns = (cpu_ns() - t) as f64 / lookups as f64;
    println!(
        "pollfwd index {n:>8} entries: {ns:6.1} ns/lookup {:6.1} cycles/lookup  ({} bytes of index per entry, {})",
        ns * hz,
        ix.bytes() / n,
        sum & 1
    );
}

/// New-session rate: every packet a new flow, first into an empty table until it is full,
/// then with LRU reclaim (each new session deletes the oldest). Frames are built in chunks
/// outside the timed loops.
fn churn(sizes: &[usize]) {
    println!(
        "NAT core in memory, one thread, every packet a new inside UDP flow, bursts of 32; thread CPU time"
    );
    println!(
        "{:>9} {:>22} {:>12} {:>14}",
        "sessions", "phase", "ns/session", "Msessions/s"
    );
    for &n in sizes {
        let mut p = params(n);
        p.lru_reclaim = true;
        let mut c = NatCore::new(p, 0).expect("nat core");
        for (phase, flows) in [
            ("fill (empty -> full)", 0..n),
            ("churn (LRU reclaim)", n..2 * n),
        ] {
            let mut ns = 0u64;
            let mut done = 0usize;
            let all: Vec<usize> = flows.collect();
            for chunk in all.chunks(32768) {
                let mut frames: Vec<Vec<u8>> = chunk
                    .iter()
                    .map(|&f| testpkt::udp(flow(f), remote(), &[0u8; 18]))
                    .collect();
                let t = cpu_ns();
                for burst in frames.chunks_mut(32) {
                    for fr in burst.iter_mut() {
                        let mut m = PktMeta::fresh(0, 0);
                        done += (c.handle(fr, &mut m) == Verdict::Continue) as usize;
                    }
                    c.flush();
                }
                ns += cpu_ns() - t;
            }
            assert_eq!(done, all.len(), "every new flow translated");
            assert_eq!(c.sessions() as usize, n);
            let per = ns as f64 / all.len() as f64;
            println!("{n:>9} {phase:>22} {per:>12.1} {:>14.2}", 1e3 / per);
        }
    }
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    match a.get(1).map(String::as_str) {
        Some("pcap") if a.len() == 4 => write_pcap(&a[2], a[3].parse().expect("N")),
        Some("index") if a.len() == 3 => index(a[2].parse().expect("N")),
        Some("churn") if a.len() > 2 => churn(
            &a[2..]
                .iter()
                .map(|s| s.parse().expect("N"))
                .collect::<Vec<_>>(),
        ),
        Some("core") => {
            let sizes: Vec<usize> = if a.len() > 2 {
                a[2..].iter().map(|s| s.parse().expect("N")).collect()
            } else {
                vec![1024, 65536, 1 << 20]
            };
            core(&sizes)
        }
        _ => {
            eprintln!(
                "usage: nat_bench pcap OUT N | nat_bench core [N...] | nat_bench index N | nat_bench churn N..."
            );
            std::process::exit(2);
        }
    }
}
