//! Lab tooling of pollfwd, kept out of the appliance library: synthetic IPv4 traffic
//! ([`traffic`]), a corpus of malformed and hostile frames ([`hostile`]) and classic pcap
//! files ([`pcap`], on the `pcap-file` crate), the inputs and outputs of DPDK's `net_pcap` PMD.
//!
//! Used by `pollfwdctl gen-pcap`, the appliance's end-to-end tests, its examples (benches)
//! and the scripts under `bench/` (through `pollfwdctl gen-pcap`).

pub mod hostile;
pub mod pcap;
pub mod traffic;
pub mod traffic6;
