//! Host topology from hwloc: which CPU (PU) sits on which core and NUMA node. Read before EAL
//! starts (EAL pins the main thread, after which the process only sees one CPU).
//!
//! hwloc2 2.2 panics on `objects_with_type(NUMANode)` with hwloc 2.x (it misreads the negative
//! NUMA depth), so nodes come from each PU's nodeset instead.

use hwloc2::{ObjectType, Topology};

/// One logical CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu {
    /// OS CPU number (what `--lcores 1@N` and core_affinity use).
    pub cpu: u32,
    /// OS index of its physical core.
    pub core: u32,
    /// NUMA node.
    pub node: u32,
}

#[derive(Debug, Clone, Default)]
pub struct HostTopology {
    pub cpus: Vec<Cpu>,
    /// NUMA nodes (at least node 0).
    pub nodes: Vec<u32>,
}

impl HostTopology {
    /// Reads the topology with hwloc; falls back to "every CPU on node 0" if hwloc fails.
    pub fn discover() -> HostTopology {
        let Some(topo) = Topology::new() else {
            return Self::fallback();
        };
        let Ok(pus) = topo.objects_with_type(&ObjectType::PU) else {
            return Self::fallback();
        };
        let mut cpus = Vec::new();
        for pu in pus {
            let mut core = pu.os_index();
            let mut p = pu.parent();
            while let Some(o) = p {
                if o.object_type() == ObjectType::Core {
                    core = o.os_index();
                    break;
                }
                p = o.parent();
            }
            let node = pu
                .nodeset()
                .map(|n| n.first())
                .filter(|&n| n >= 0)
                .unwrap_or(0) as u32;
            cpus.push(Cpu {
                cpu: pu.os_index(),
                core,
                node,
            });
        }
        cpus.sort_by_key(|c| c.cpu);
        let mut nodes: Vec<u32> = topo
            .object_at_root()
            .nodeset()
            .map(|ns| ns.into_iter().collect())
            .unwrap_or_default();
        if nodes.is_empty() {
            nodes.push(0);
        }
        if cpus.is_empty() {
            return Self::fallback();
        }
        HostTopology { cpus, nodes }
    }

    fn fallback() -> HostTopology {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as u32;
        HostTopology {
            cpus: (0..n)
                .map(|c| Cpu {
                    cpu: c,
                    core: c,
                    node: 0,
                })
                .collect(),
            nodes: vec![0],
        }
    }

    pub fn cpu(&self, cpu: u32) -> Option<&Cpu> {
        self.cpus.iter().find(|c| c.cpu == cpu)
    }

    /// Human-readable listing.
    pub fn render(&self) -> String {
        let mut s = format!(
            "host: {} CPUs, NUMA nodes {:?}\n",
            self.cpus.len(),
            self.nodes
        );
        s += "  cpu  core  node\n";
        for c in &self.cpus {
            s += &format!("  {:>3}  {:>4}  {:>4}\n", c.cpu, c.core, c.node);
        }
        s
    }
}

/// Memory the kernel can give to new allocations without swapping (`MemAvailable` of
/// /proc/meminfo), in bytes; `None` where it cannot be read.
pub fn mem_available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn discovers_this_machine() {
        let t = super::HostTopology::discover();
        let n = std::thread::available_parallelism().unwrap().get();
        assert_eq!(t.cpus.len(), n, "{}", t.render());
        assert!(!t.nodes.is_empty());
        assert!(t.cpus.iter().all(|c| t.nodes.contains(&c.node)));
    }
}
