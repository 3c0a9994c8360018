//! Writes the pcaps of the hostile-traffic rate benchmark (bench/hostile.sh):
//!
//!     hostile_pcap DIR N EVERY [--per-kind]
//!
//! - `DIR/clean.pcap`: N legitimate frames of the inside host (`lab::hostile::Net::legit`:
//!   UDP 64 and 570 bytes and TCP, 64 source ports), routed and translated by the full chain;
//! - `DIR/mixed.pcap`: the same N legitimate frames with one hostile frame after every EVERY
//!   of them, taken in turn from the inside-port kinds of `lab::hostile::corpus` (all kinds
//!   cycle, so each appears about equally);
//! - `DIR/empty.pcap`: no frame (the outside port's input);
//! - with `--per-kind`, also `DIR/kind-NAME.pcap` for each of those kinds: the same N
//!   legitimate frames with that kind's frames alone (in turn) after every EVERY of them.
//!
//! Prints "legit N hostile H kinds K" (the mixed file holds N + H frames), then with
//! `--per-kind` one line "kind NAME H" per kind file (it holds N + H frames).

use lab::hostile::{Net, Side, corpus};

/// The N legitimate frames with one of `hostile` (in turn) after every `every` of them;
/// returns the frames and the number of hostile ones.
fn mix(legit: &[Vec<u8>], hostile: &[&Vec<u8>], every: usize) -> (Vec<Vec<u8>>, usize) {
    let mut mixed = Vec::with_capacity(legit.len() + legit.len() / every);
    let mut h = 0;
    for (i, f) in legit.iter().enumerate() {
        mixed.push(f.clone());
        if (i + 1) % every == 0 {
            mixed.push(hostile[h % hostile.len()].clone());
            h += 1;
        }
    }
    (mixed, h)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let usage = "usage: hostile_pcap DIR N EVERY [--per-kind]";
    let dir = std::path::PathBuf::from(a.get(1).expect(usage));
    let n: usize = a.get(2).and_then(|s| s.parse().ok()).expect(usage);
    let every: usize = a.get(3).and_then(|s| s.parse().ok()).expect(usage);
    let per_kind = match a.get(4).map(String::as_str) {
        None => false,
        Some("--per-kind") => true,
        Some(_) => panic!("{usage}"),
    };
    assert!(n > 0 && every > 0, "{usage}");
    let net = Net::default();
    let legit = net.legit(n, 64);
    // net_pcap's infinite_rx cannot replay a frame longer than one mbuf (the jumbo kind).
    let fits = |f: &&Vec<u8>| f.len() <= 2000;
    let kinds: Vec<_> = corpus(&net, 1)
        .into_iter()
        .filter(|k| k.side == Side::Lan && k.frames.iter().any(|f| fits(&f)))
        .collect();
    let hostile: Vec<&Vec<u8>> = kinds
        .iter()
        .flat_map(|k| k.frames.iter())
        .filter(fits)
        .collect();
    let (mixed, h) = mix(&legit, &hostile, every);
    let w = |name: &str, frames: &[Vec<u8>]| {
        lab::pcap::write_frames(&dir.join(name), frames).unwrap_or_else(|e| panic!("{e}"));
    };
    w("clean.pcap", &legit);
    w("mixed.pcap", &mixed);
    w("empty.pcap", &[]);
    println!("legit {n} hostile {h} kinds {}", kinds.len());
    if per_kind {
        for k in &kinds {
            let frames: Vec<&Vec<u8>> = k.frames.iter().filter(fits).collect();
            let (mixed, h) = mix(&legit, &frames, every);
            w(&format!("kind-{}.pcap", k.name), &mixed);
            println!("kind {} {h}", k.name);
        }
    }
}
