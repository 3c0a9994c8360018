//! Writes the pcaps of the hostile-traffic rate benchmark (bench/hostile.sh):
//!
//!     hostile_pcap DIR N EVERY
//!
//! - `DIR/clean.pcap`: N legitimate frames of the inside host (`lab::hostile::Net::legit`:
//!   UDP 64 and 570 bytes and TCP, 64 source ports), routed and translated by the full chain;
//! - `DIR/mixed.pcap`: the same N legitimate frames with one hostile frame after every EVERY
//!   of them, taken in turn from the inside-port kinds of `lab::hostile::corpus` (all kinds
//!   cycle, so each appears about equally);
//! - `DIR/empty.pcap`: no frame (the outside port's input).
//!
//! Prints "legit N hostile H kinds K" (the mixed file holds N + H frames).

use lab::hostile::{Net, Side, corpus};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let usage = "usage: hostile_pcap DIR N EVERY";
    let dir = std::path::PathBuf::from(a.get(1).expect(usage));
    let n: usize = a.get(2).and_then(|s| s.parse().ok()).expect(usage);
    let every: usize = a.get(3).and_then(|s| s.parse().ok()).expect(usage);
    assert!(n > 0 && every > 0, "{usage}");
    let net = Net::default();
    let legit = net.legit(n, 64);
    let kinds: Vec<_> = corpus(&net, 1)
        .into_iter()
        .filter(|k| k.side == Side::Lan)
        .collect();
    // net_pcap's infinite_rx cannot replay a frame longer than one mbuf (the jumbo kind).
    let hostile: Vec<&Vec<u8>> = kinds
        .iter()
        .flat_map(|k| k.frames.iter())
        .filter(|f| f.len() <= 2000)
        .collect();
    let mut mixed = Vec::with_capacity(n + n / every);
    let mut h = 0;
    for (i, f) in legit.iter().enumerate() {
        mixed.push(f.clone());
        if (i + 1) % every == 0 {
            mixed.push(hostile[h % hostile.len()].clone());
            h += 1;
        }
    }
    let w = |name: &str, frames: &[Vec<u8>]| {
        lab::pcap::write_frames(&dir.join(name), frames).unwrap_or_else(|e| panic!("{e}"));
    };
    w("clean.pcap", &legit);
    w("mixed.pcap", &mixed);
    w("empty.pcap", &[]);
    println!("legit {n} hostile {h} kinds {}", kinds.len());
}
