//! Ethernet ports: set-up, queue handles (each claimable once, so two lcores can never poll the
//! same queue), stats, xstats and link state.

use std::ffi::{CStr, CString, c_char};
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crate::error::{Error, Result, check};
use crate::ffi;
use crate::mbuf::Burst;
use crate::mempool::Mempool;

/// How a port is set up.
#[derive(Debug, Clone)]
pub struct PortSetup {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// MTU to set, if any (a PMD that cannot set it is reported, not fatal, when equal to the
    /// current one).
    pub mtu: Option<u16>,
    pub promiscuous: bool,
    /// Ask the device to strip 802.1Q tags on receive and insert them on transmit, where it
    /// can (see [`PortInfo::vlan_offloads`]).
    pub vlan_offload: bool,
}

/// Static facts about a port's device.
#[derive(Debug, Clone, Default)]
pub struct PortInfo {
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub rx_desc_max: u16,
    pub tx_desc_max: u16,
    pub rss_offloads: u64,
    pub max_mtu: u32,
    pub rx_offloads: u64,
    pub tx_offloads: u64,
}

impl PortInfo {
    /// Whether the device can strip 802.1Q tags on receive and insert them on transmit.
    pub fn vlan_offloads(&self) -> (bool, bool) {
        let (strip, insert) = crate::vlan_offload_bits();
        (
            self.rx_offloads & strip != 0,
            self.tx_offloads & insert != 0,
        )
    }
}

/// Link state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    pub up: bool,
    /// Mb/s.
    pub speed: u32,
    pub full_duplex: bool,
    pub autoneg: bool,
}

/// Basic port counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

#[derive(Debug)]
struct Inner {
    id: u16,
    name: String,
    rx_claimed: AtomicU64,
    tx_claimed: AtomicU64,
    live_queues: AtomicU32,
    rx_queues: AtomicU32,
    tx_queues: AtomicU32,
}

/// An ethdev port found by device name (vdev name such as `net_pcap0`, or PCI address).
#[derive(Debug, Clone)]
pub struct Port {
    inner: Arc<Inner>,
}

impl Port {
    /// Looks up the port EAL created for device `name`.
    pub fn by_name(name: &str) -> Result<Port> {
        let c = CString::new(name).map_err(|_| Error::invalid("port name has NUL"))?;
        let mut id: u16 = 0;
        // SAFETY: c is a valid C string; id is a valid out-pointer for the call's duration.
        let rc = unsafe { ffi::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        check(rc, || {
            format!("no DPDK port for device '{name}' (is its --vdev/-a given?)")
        })?;
        Ok(Port {
            inner: Arc::new(Inner {
                id,
                name: name.to_string(),
                rx_claimed: AtomicU64::new(0),
                tx_claimed: AtomicU64::new(0),
                live_queues: AtomicU32::new(0),
                rx_queues: AtomicU32::new(0),
                tx_queues: AtomicU32::new(0),
            }),
        })
    }

    pub fn id(&self) -> u16 {
        self.inner.id
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Number of ports EAL created.
    pub fn count() -> u16 {
        // SAFETY: reads the ethdev table; valid after EAL init (0 before).
        unsafe { ffi::rte_eth_dev_count_avail() }
    }

    pub fn info(&self) -> Result<PortInfo> {
        let mut i = ffi::pf_dev_info::default();
        // SAFETY: i is a valid out-struct; the port id came from DPDK.
        let rc = unsafe { ffi::pf_dev_info(self.id(), &mut i) };
        check(rc, || format!("rte_eth_dev_info_get(port {})", self.id()))?;
        // SAFETY: the shim NUL-terminates driver_name (snprintf into the array).
        let driver = unsafe { CStr::from_ptr(i.driver_name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        Ok(PortInfo {
            driver,
            max_rx_queues: i.max_rx_queues,
            max_tx_queues: i.max_tx_queues,
            rx_desc_max: i.rx_desc_max,
            tx_desc_max: i.tx_desc_max,
            rss_offloads: i.flow_type_rss_offloads,
            max_mtu: i.max_mtu,
            rx_offloads: i.rx_offload_capa,
            tx_offloads: i.tx_offload_capa,
        })
    }

    /// NUMA node of the device (`rte_eth_dev_socket_id`); `None` when unknown (virtual PMDs).
    pub fn socket(&self) -> Option<u32> {
        // SAFETY: plain lookup by port id.
        let s = unsafe { ffi::rte_eth_dev_socket_id(self.id()) };
        (s >= 0).then_some(s as u32)
    }

    /// Configures the device and sets up every queue. Each RX queue takes its buffers from the
    /// pool given for it (the pool on the NUMA node of the lcore that polls it).
    pub fn configure(&self, setup: &PortSetup, rx_pools: &[Mempool]) -> Result<()> {
        let id = self.id();
        if rx_pools.len() != setup.rx_queues as usize {
            return Err(Error::invalid(format!(
                "port {id}: {} rx pools for {} rx queues",
                rx_pools.len(),
                setup.rx_queues
            )));
        }
        let info = self.info()?;
        let mut conf = ffi::rte_eth_conf::default();
        if setup.rx_queues > 1 {
            let rss = crate::rss_ip_tcp_udp() & info.rss_offloads;
            if rss != 0 {
                conf.rxmode.mq_mode = ffi::RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_hf = rss;
            }
        }
        if setup.vlan_offload {
            let (strip, insert) = crate::vlan_offload_bits();
            conf.rxmode.offloads |= info.rx_offloads & strip;
            conf.txmode.offloads |= info.tx_offloads & insert;
        }
        // SAFETY: conf is a fully initialised rte_eth_conf; DPDK copies it.
        let rc = unsafe { ffi::rte_eth_dev_configure(id, setup.rx_queues, setup.tx_queues, &conf) };
        check(rc, || {
            format!(
                "rte_eth_dev_configure(port {id} '{}', {} rx, {} tx queues; device max {} rx, {} tx)",
                self.name(),
                setup.rx_queues,
                setup.tx_queues,
                info.max_rx_queues,
                info.max_tx_queues
            )
        })?;
        let (mut nrx, mut ntx) = (setup.rx_desc, setup.tx_desc);
        // SAFETY: valid out-pointers for the call's duration.
        let rc = unsafe { ffi::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nrx, &mut ntx) };
        check(rc, || {
            format!("rte_eth_dev_adjust_nb_rx_tx_desc(port {id})")
        })?;
        let socket = self.socket().unwrap_or(rx_pools[0].socket().max(0) as u32);
        for (q, pool) in rx_pools.iter().enumerate() {
            // SAFETY: null rxconf means the device defaults; the pool outlives the port
            // (pools are never freed).
            let rc = unsafe {
                ffi::rte_eth_rx_queue_setup(
                    id,
                    q as u16,
                    nrx,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            check(rc, || {
                format!("rte_eth_rx_queue_setup(port {id}, queue {q})")
            })?;
        }
        for q in 0..setup.tx_queues {
            // SAFETY: null txconf means the device defaults.
            let rc = unsafe { ffi::rte_eth_tx_queue_setup(id, q, ntx, socket, std::ptr::null()) };
            check(rc, || {
                format!("rte_eth_tx_queue_setup(port {id}, queue {q})")
            })?;
        }
        if let Some(mtu) = setup.mtu {
            // SAFETY: plain call by port id.
            let rc = unsafe { ffi::rte_eth_dev_set_mtu(id, mtu) };
            // Virtual PMDs (pcap, memif) may not support setting the MTU: only a hard failure
            // on a device that claims support is an error.
            if rc < 0 && rc != -libc::ENOTSUP && rc != -libc::ENOSYS {
                check(rc, || format!("rte_eth_dev_set_mtu(port {id}, {mtu})"))?;
            }
        }
        self.inner
            .rx_queues
            .store(setup.rx_queues as u32, Ordering::Relaxed);
        self.inner
            .tx_queues
            .store(setup.tx_queues as u32, Ordering::Relaxed);
        if setup.promiscuous {
            // SAFETY: plain call by port id; failure (unsupported) is harmless.
            unsafe { ffi::rte_eth_promiscuous_enable(id) };
        }
        Ok(())
    }

    pub fn start(&self) -> Result<()> {
        // SAFETY: plain call by port id; configure() ran before (DPDK checks).
        let rc = unsafe { ffi::rte_eth_dev_start(self.id()) };
        check(rc, || format!("rte_eth_dev_start(port {})", self.id())).map(|_| ())
    }

    /// Stops the port. Fails while any queue handle still exists (a worker may be polling).
    pub fn stop(&self) -> Result<()> {
        self.no_live_queues("stop")?;
        // SAFETY: no queue handle exists, so no lcore is in rx/tx_burst on this port.
        let rc = unsafe { ffi::rte_eth_dev_stop(self.id()) };
        check(rc, || format!("rte_eth_dev_stop(port {})", self.id())).map(|_| ())
    }

    /// Closes the port (after stop). Fails while any queue handle still exists.
    pub fn close(&self) -> Result<()> {
        self.no_live_queues("close")?;
        // SAFETY: as in stop; the port id is not used for rx/tx afterwards (no queue handles
        // can be created: configure would fail on a closed port).
        let rc = unsafe { ffi::rte_eth_dev_close(self.id()) };
        check(rc, || format!("rte_eth_dev_close(port {})", self.id())).map(|_| ())
    }

    fn no_live_queues(&self, what: &str) -> Result<()> {
        let n = self.inner.live_queues.load(Ordering::Acquire);
        if n != 0 {
            return Err(Error::new(
                format!("{what} port {}: {n} queue handles still in use", self.id()),
                libc::EBUSY,
            ));
        }
        Ok(())
    }

    fn claim(&self, rx: bool, q: u16) -> Result<()> {
        let (set, count, kind) = if rx {
            (&self.inner.rx_claimed, &self.inner.rx_queues, "rx")
        } else {
            (&self.inner.tx_claimed, &self.inner.tx_queues, "tx")
        };
        if q as u32 >= count.load(Ordering::Relaxed) || q >= 64 {
            return Err(Error::invalid(format!(
                "port {} has no {kind} queue {q}",
                self.id()
            )));
        }
        let bit = 1u64 << q;
        if set.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
            return Err(Error::new(
                format!(
                    "port {} {kind} queue {q} is already used by another lcore",
                    self.id()
                ),
                libc::EBUSY,
            ));
        }
        self.inner.live_queues.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Claims RX queue `q` (once per queue).
    pub fn rx_queue(&self, q: u16) -> Result<RxQueue> {
        self.claim(true, q)?;
        Ok(RxQueue {
            port: self.clone(),
            queue: q,
        })
    }

    /// Claims TX queue `q` (once per queue).
    pub fn tx_queue(&self, q: u16) -> Result<TxQueue> {
        self.claim(false, q)?;
        Ok(TxQueue {
            port: self.clone(),
            queue: q,
        })
    }

    pub fn link(&self) -> Link {
        let mut l = ffi::pf_link::default();
        // SAFETY: valid out-struct; nowait variant does not block.
        let rc = unsafe { ffi::pf_link(self.id(), &mut l) };
        if rc < 0 {
            return Link::default();
        }
        Link {
            up: l.up != 0,
            speed: l.speed,
            full_duplex: l.full_duplex != 0,
            autoneg: l.autoneg != 0,
        }
    }

    /// The device's MTU (`rte_eth_dev_get_mtu`: the one set, else the PMD's default), or
    /// `None` if the device does not say.
    pub fn mtu(&self) -> Option<u16> {
        let mut m: u16 = 0;
        // SAFETY: plain call by port id with a valid out-pointer.
        let rc = unsafe { ffi::rte_eth_dev_get_mtu(self.id(), &mut m) };
        (rc == 0 && m > 0).then_some(m)
    }

    pub fn mac(&self) -> [u8; 6] {
        let mut a = ffi::rte_ether_addr::default();
        // SAFETY: valid out-struct.
        unsafe { ffi::rte_eth_macaddr_get(self.id(), &mut a) };
        a.addr_bytes
    }

    pub fn stats(&self) -> PortStats {
        let mut s = ffi::rte_eth_stats::default();
        // SAFETY: valid out-struct; reading stats is allowed from any thread.
        let rc = unsafe { ffi::rte_eth_stats_get(self.id(), &mut s) };
        if rc < 0 {
            return PortStats::default();
        }
        PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }

    pub fn reset_stats(&self) {
        // SAFETY: plain call by port id.
        unsafe { ffi::rte_eth_stats_reset(self.id()) };
        // SAFETY: plain call by port id.
        unsafe { ffi::rte_eth_xstats_reset(self.id()) };
    }

    /// Extended stats as (name, value) pairs.
    pub fn xstats(&self) -> Vec<(String, u64)> {
        let id = self.id();
        // SAFETY: null array with size 0 asks for the count.
        let n = unsafe { ffi::rte_eth_xstats_get_names(id, std::ptr::null_mut(), 0) };
        if n <= 0 {
            return Vec::new();
        }
        let mut names = vec![ffi::rte_eth_xstat_name::default(); n as usize];
        let mut vals = vec![ffi::rte_eth_xstat::default(); n as usize];
        // SAFETY: both arrays have n elements, as the sizes passed say.
        let n1 = unsafe { ffi::rte_eth_xstats_get_names(id, names.as_mut_ptr(), n as u32) };
        // SAFETY: as above.
        let n2 = unsafe { ffi::rte_eth_xstats_get(id, vals.as_mut_ptr(), n as u32) };
        if n1 != n || n2 != n {
            return Vec::new();
        }
        vals.iter()
            .filter_map(|v| {
                let name = names.get(v.id as usize)?;
                // SAFETY: DPDK NUL-terminates xstat names within the fixed-size array.
                let s = unsafe { CStr::from_ptr(name.name.as_ptr() as *const c_char) };
                Some((s.to_string_lossy().into_owned(), v.value))
            })
            .collect()
    }
}

// DPDK 22.11's `rte_eth_rx_burst` / `rte_eth_tx_burst` (static inline in rte_ethdev.h), written
// out here so that the call into the PMD is made straight from the worker loop instead of
// through a C shim function: one call level less per burst.
// The same steps as the header with RTE_ETHDEV_RXTX_CALLBACKS (Debian's build), without the
// RTE_ETHDEV_DEBUG_* checks (off in release DPDK builds) and the fast-path trace points
// (compiled out unless RTE_ENABLE_TRACE_FP). `rte_eth_fp_ops` is laid out by bindgen from the
// installed headers.

/// # Safety
/// `port` is a started port and `queue` one of its configured RX queues, used by this thread
/// alone; `pkts` has room for `n` pointers.
#[inline(always)]
unsafe fn eth_rx_burst(port: u16, queue: u16, pkts: *mut *mut ffi::rte_mbuf, n: u16) -> u16 {
    // SAFETY: rte_eth_fp_ops has RTE_MAX_ETHPORTS entries and DPDK port ids are below that;
    // the entry of a started port holds its queue-data array (one slot per configured queue)
    // and its burst function, set by rte_eth_dev_start and unchanged until the port stops,
    // which `Port::stop` refuses while a queue handle lives (the caller's contract).
    unsafe {
        let p = &*(&raw const ffi::rte_eth_fp_ops)
            .cast::<ffi::rte_eth_fp_ops>()
            .add(port as usize);
        let qd = *p.rxq.data.add(queue as usize);
        // Never NULL (DPDK installs dummy functions on a stopped port); checked anyway.
        let Some(burst) = p.rx_pkt_burst else {
            return 0;
        };
        let mut nb = burst(qd, pkts, n);
        // The callback list head is published with a release store (rte_eth_add_rx_callback);
        // a relaxed load suffices, as in the header (dependent loads).
        let cb = (*p
            .rxq
            .clbk
            .add(queue as usize)
            .cast::<AtomicPtr<std::ffi::c_void>>())
        .load(Ordering::Relaxed);
        if !cb.is_null() {
            nb = ffi::rte_eth_call_rx_callbacks(port, queue, pkts, nb, n, cb);
        }
        nb
    }
}

/// # Safety
/// `port` is a started port and `queue` one of its configured TX queues, used by this thread
/// alone; `pkts` holds `n` owned mbuf pointers.
#[inline(always)]
unsafe fn eth_tx_burst(port: u16, queue: u16, pkts: *mut *mut ffi::rte_mbuf, n: u16) -> u16 {
    // SAFETY: as in `eth_rx_burst`, for the TX side of the port's fast-path entry.
    unsafe {
        let p = &*(&raw const ffi::rte_eth_fp_ops)
            .cast::<ffi::rte_eth_fp_ops>()
            .add(port as usize);
        let qd = *p.txq.data.add(queue as usize);
        let mut nb = n;
        let cb = (*p
            .txq
            .clbk
            .add(queue as usize)
            .cast::<AtomicPtr<std::ffi::c_void>>())
        .load(Ordering::Relaxed);
        if !cb.is_null() {
            nb = ffi::rte_eth_call_tx_callbacks(port, queue, pkts, nb, cb);
        }
        let Some(burst) = p.tx_pkt_burst else {
            return 0;
        };
        burst(qd, pkts, nb)
    }
}

/// An RX queue claimed by one lcore.
#[derive(Debug)]
pub struct RxQueue {
    port: Port,
    queue: u16,
}

impl RxQueue {
    pub fn port_id(&self) -> u16 {
        self.port.id()
    }

    pub fn queue_id(&self) -> u16 {
        self.queue
    }

    /// Receives up to `max` packets into the free slots of `burst`; returns how many arrived.
    #[inline]
    pub fn rx_burst(&mut self, burst: &mut Burst, max: usize) -> usize {
        let (ptr, room) = burst.spare_ptr();
        let room = room.min(max);
        // SAFETY: ptr has room slots; this queue is claimed by us alone (claim bitmap) and the
        // port is started (stop/close refuse while a handle lives); received mbufs are owned
        // by the caller from now on.
        let n = unsafe { eth_rx_burst(self.port.id(), self.queue, ptr, room as u16) } as usize;
        // SAFETY: rx_burst wrote n owned mbuf pointers at ptr.
        unsafe { burst.commit(n) };
        n
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        self.port
            .inner
            .rx_claimed
            .fetch_and(!(1u64 << self.queue), Ordering::AcqRel);
        self.port.inner.live_queues.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A TX queue claimed by one lcore.
#[derive(Debug)]
pub struct TxQueue {
    port: Port,
    queue: u16,
}

impl TxQueue {
    pub fn port_id(&self) -> u16 {
        self.port.id()
    }

    pub fn queue_id(&self) -> u16 {
        self.queue
    }

    /// Transmits packets from the front of `burst`; the ones the NIC took leave the burst, the
    /// refused ones stay (the caller frees and counts them). Returns how many were sent.
    #[inline]
    pub fn tx_burst(&mut self, burst: &mut Burst) -> usize {
        let n = burst.len();
        if n == 0 {
            return 0;
        }
        // SAFETY: the first n slots are owned mbufs; this queue is ours alone (claim bitmap);
        // the NIC takes ownership of the first `sent` mbufs, which we then forget.
        let sent =
            unsafe { eth_tx_burst(self.port.id(), self.queue, burst.raw_ptr(), n as u16) } as usize;
        burst.consume_front(sent);
        sent
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        self.port
            .inner
            .tx_claimed
            .fetch_and(!(1u64 << self.queue), Ordering::AcqRel);
        self.port.inner.live_queues.fetch_sub(1, Ordering::AcqRel);
    }
}
