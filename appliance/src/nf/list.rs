//! The network functions pollfwd has: THE list. Everything that iterates the network functions
//! is generated from it or walks [`crate::registry::ALL`], which is generated from it: the
//! config's NF sections and the known stage names (`crate::config`), the control-plane state
//! (`crate::nf::plane`) and the registry (operations, reload, summary, metrics). Adding an NF
//! adds its folder name here (see docs/architecture.md, "Adding a network function").
//!
//! The order is the order of `reload` commits: `forward` before `nat` (NAT's commit points
//! forward's proxy ARP at NAT's new outside addresses, after forward installed its own tables).

/// Calls `$then! { nf, nf, ... }` with the folder name of every network function.
macro_rules! nf_list {
    ($then:ident) => {
        $then! { xconnect, macswap, classify, forward, policer, nat }
    };
}
pub(crate) use nf_list;
