//! Lcore hand-off benchmark: how much does it cost to move an mbuf pointer from one pinned
//! thread to another, in bursts of 32, through
//!
//! - `rte_ring` single-producer/single-consumer with the burst API (what pollfwd's pipeline
//!   mode and hand-off use: `dpdk::spsc_ring`);
//! - crossbeam-queue's `ArrayQueue`, one push and one pop per pointer (it has no burst API);
//! - crossbeam-queue's `ArrayQueue` of whole bursts (one push per 32 pointers, the burst moved
//!   by value), for comparison.
//!
//! Two threads pinned to two CPUs pass a fixed set of real mbufs around a loop of two queues:
//! the producer moves what comes back into the forward queue, the consumer moves what arrives
//! into the return queue, a burst at a time. The figure is the time per pointer delivered to
//! the consumer (each thread does one enqueue and one dequeue per pointer). Bounded: a fixed
//! number of pointers per run. Takes the machine's busy-polling lock (two spinning threads).
//!
//!   ring-handoff [--pointers N] [--runs R] [--burst B] [--cpus A,B]

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use crossbeam_queue::ArrayQueue;
use dpdk::{BURST_MAX, Burst, Mbuf, Mempool, spsc_ring};

/// Mbufs in flight around the loop (less than each queue's capacity: enqueues never block
/// the loop for good).
const INFLIGHT: usize = 1024;
/// Slots of each queue.
const QUEUE: usize = 2048;

struct Opts {
    pointers: u64,
    runs: usize,
    burst: usize,
    cpus: (usize, usize),
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        pointers: 20_000_000,
        runs: 5,
        burst: 32,
        cpus: (0, 1),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--pointers" => o.pointers = val()?.parse().map_err(|e| format!("--pointers: {e}"))?,
            "--runs" => o.runs = val()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--burst" => o.burst = val()?.parse().map_err(|e| format!("--burst: {e}"))?,
            "--cpus" => {
                let v = val()?;
                let (a, b) = v.split_once(',').ok_or("--cpus A,B")?;
                o.cpus = (
                    a.parse().map_err(|_| "--cpus A,B")?,
                    b.parse().map_err(|_| "--cpus A,B")?,
                );
            }
            "-h" | "--help" => {
                println!("ring-handoff [--pointers N] [--runs R] [--burst B] [--cpus A,B]");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    if o.burst == 0 || o.burst > BURST_MAX {
        return Err(format!("--burst must be 1..={BURST_MAX}"));
    }
    if o.runs == 0 || o.pointers == 0 {
        return Err("--runs and --pointers must be positive".into());
    }
    Ok(o)
}

fn pin(cpu: usize) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        eprintln!("ring-handoff: warning: could not pin to CPU {cpu}");
    }
}

fn fill(pool: &Mempool, n: usize) -> Vec<Mbuf> {
    (0..n)
        .map(|_| pool.alloc().expect("mbuf pool too small"))
        .collect()
}

/// Runs `producer` and `consumer` on two pinned threads, started together; returns the
/// consumer's elapsed time in seconds.
fn two_threads(
    cpus: (usize, usize),
    producer: impl FnOnce(&AtomicBool) + Send + 'static,
    consumer: impl FnOnce() + Send + 'static,
) -> f64 {
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(2));
    let (d, s) = (done.clone(), start.clone());
    let p = std::thread::spawn(move || {
        pin(cpus.0);
        s.wait();
        producer(&d);
    });
    let c = std::thread::spawn(move || {
        pin(cpus.1);
        start.wait();
        let t = Instant::now();
        consumer();
        let e = t.elapsed().as_secs_f64();
        done.store(true, Ordering::Release);
        e
    });
    let e = c.join().expect("consumer");
    p.join().expect("producer");
    e
}

fn rte_ring_run(pool: &Mempool, o: &Opts, run: usize) -> f64 {
    let (mut fwd_p, mut fwd_c, _) = spsc_ring(&format!("rb_f{run}"), QUEUE as u32, -1).unwrap();
    let (mut back_p, mut back_c, _) = spsc_ring(&format!("rb_b{run}"), QUEUE as u32, -1).unwrap();
    // Everything starts in the forward ring.
    let mut b = Burst::new();
    for m in fill(pool, INFLIGHT) {
        if let Err(m) = b.push(m) {
            fwd_p.enqueue_burst(&mut b);
            assert!(b.is_empty());
            b.push(m).unwrap_or_else(|_| panic!("empty burst"));
        }
    }
    fwd_p.enqueue_burst(&mut b);
    let (burst, n) = (o.burst, o.pointers);
    two_threads(
        o.cpus,
        move |done| {
            let mut b = Burst::new();
            while !done.load(Ordering::Relaxed) {
                let room = burst.saturating_sub(b.len()).max(1);
                back_c.dequeue_burst(&mut b, room);
                if !b.is_empty() {
                    fwd_p.enqueue_burst(&mut b);
                }
            }
        },
        move || {
            let mut b = Burst::new();
            let mut got = 0u64;
            while got < n {
                let room = burst.saturating_sub(b.len()).max(1);
                got += fwd_c.dequeue_burst(&mut b, room) as u64;
                if !b.is_empty() {
                    back_p.enqueue_burst(&mut b);
                }
            }
        },
    )
}

fn crossbeam_run(pool: &Mempool, o: &Opts) -> f64 {
    let fwd = Arc::new(ArrayQueue::<Mbuf>::new(QUEUE));
    let back = Arc::new(ArrayQueue::<Mbuf>::new(QUEUE));
    for m in fill(pool, INFLIGHT) {
        fwd.push(m)
            .unwrap_or_else(|_| panic!("queue larger than the mbufs in flight"));
    }
    let (burst, n) = (o.burst, o.pointers);
    let (f2, b2) = (fwd.clone(), back.clone());
    two_threads(
        o.cpus,
        move |done| {
            while !done.load(Ordering::Relaxed) {
                // A burst at a time: up to `burst` pops, then as many pushes.
                for _ in 0..burst {
                    match b2.pop() {
                        Some(m) => f2
                            .push(m)
                            .unwrap_or_else(|_| panic!("forward queue has room")),
                        None => break,
                    }
                }
            }
        },
        move || {
            let mut got = 0u64;
            while got < n {
                for _ in 0..burst {
                    match fwd.pop() {
                        Some(m) => {
                            got += 1;
                            back.push(m)
                                .unwrap_or_else(|_| panic!("return queue has room"));
                        }
                        None => break,
                    }
                }
            }
        },
    )
}

fn crossbeam_bursts_run(pool: &Mempool, o: &Opts) -> f64 {
    let nb = INFLIGHT / o.burst;
    let fwd = Arc::new(ArrayQueue::<Burst>::new(QUEUE));
    let back = Arc::new(ArrayQueue::<Burst>::new(QUEUE));
    let mut all = fill(pool, nb * o.burst).into_iter();
    for _ in 0..nb {
        let mut b = Burst::new();
        for m in all.by_ref().take(o.burst) {
            b.push(m).unwrap_or_else(|_| panic!("burst <= BURST_MAX"));
        }
        fwd.push(b).unwrap_or_else(|_| panic!("room"));
    }
    let n = o.pointers;
    let (f2, b2) = (fwd.clone(), back.clone());
    two_threads(
        o.cpus,
        move |done| {
            while !done.load(Ordering::Relaxed) {
                if let Some(b) = b2.pop() {
                    f2.push(b).unwrap_or_else(|_| panic!("room"));
                }
            }
        },
        move || {
            let mut got = 0u64;
            while got < n {
                if let Some(b) = fwd.pop() {
                    got += b.len() as u64;
                    back.push(b).unwrap_or_else(|_| panic!("room"));
                }
            }
        },
    )
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn best(v: &mut [f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ring-handoff: {e}");
            std::process::exit(2);
        }
    };
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/pollfwd-busy.lock")
        .expect("open /tmp/pollfwd-busy.lock");
    lock.lock().expect("busy lock");
    let prefix = format!("pf-ringbench-{}", std::process::id());
    let args: Vec<String> = [
        "ring-handoff".to_string(),
        "--no-pci".into(),
        "--in-memory".into(),
        "--no-telemetry".into(),
        "-l".into(),
        o.cpus.0.to_string(),
        "--log-level=warning".into(),
        format!("--file-prefix={prefix}"),
    ]
    .into();
    let eal = dpdk::Eal::init(&args).unwrap_or_else(|e| {
        eprintln!("ring-handoff: {e}");
        std::process::exit(1)
    });
    // --in-memory keeps nothing in EAL's runtime directory: remove it (only if empty).
    let _ = std::fs::remove_dir(format!("/var/run/dpdk/{prefix}"));
    let pool = Mempool::create("rb_pool", 4095, 0, 512, -1).expect("mempool");
    println!(
        "hand-off of {} mbuf pointers per run, bursts of {}, {} mbufs in flight, CPUs {} -> {}",
        o.pointers, o.burst, INFLIGHT, o.cpus.0, o.cpus.1
    );
    let mut ring = Vec::new();
    let mut cb = Vec::new();
    let mut cbb = Vec::new();
    let ns = |secs: f64| secs * 1e9 / o.pointers as f64;
    // Interleaved runs: the machine is noisy, each kind sees the same conditions.
    for r in 0..o.runs {
        let a = ns(rte_ring_run(&pool, &o, r));
        let b = ns(crossbeam_run(&pool, &o));
        let c = ns(crossbeam_bursts_run(&pool, &o));
        println!(
            "run {r}: rte_ring SP/SC burst {a:7.2} ns/ptr   ArrayQueue per pointer {b:7.2} ns/ptr   ArrayQueue<Burst> {c:7.2} ns/ptr"
        );
        ring.push(a);
        cb.push(b);
        cbb.push(c);
    }
    // Other processes only ever add time: the best run is the cleanest estimate of the cost,
    // the median shows what a busy machine gives.
    for (what, f) in [("median", median as fn(&mut [f64]) -> f64), ("best", best)] {
        let (a, b, c) = (f(&mut ring), f(&mut cb), f(&mut cbb));
        println!("{what} ns per pointer:");
        println!(
            "  rte_ring SP/SC, burst enqueue/dequeue : {a:7.2} ns  ({:6.1} Mpointers/s)",
            1e3 / a
        );
        println!(
            "  crossbeam ArrayQueue, one per pointer : {b:7.2} ns  ({:6.1} Mpointers/s)  {:.1}x rte_ring",
            1e3 / b,
            b / a
        );
        println!(
            "  crossbeam ArrayQueue of whole bursts  : {c:7.2} ns  ({:6.1} Mpointers/s)  {:.1}x rte_ring",
            1e3 / c,
            c / a
        );
    }
    let _ = eal.cleanup();
}
