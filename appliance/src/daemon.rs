//! The daemon's life: EAL up, pools per NUMA node, ports configured and started, one worker per
//! configured lcore launched, then wait (signal, duration, idle) and shut down in a fixed order:
//! quit flag, join lcores, stop ports, close ports, summary.
//!
//! Joining the lcores is bounded: a worker that has not returned [`SHUTDOWN_GRACE`] after the
//! quit flag, or a second SIGINT/SIGTERM, forces the exit: the lcores still running are named
//! in the log, the summary is printed from the counters, ports and EAL are left to the process
//! exit (a running worker may still use them) and the exit code is 1.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dpdk::{Eal, Mempool, Port, PortSetup, TxBuffer};
use pollfwd_pipeline::{
    Fault, LcoreCounters, Leftovers, LoopConfig, Mailbox, Sink, Source, Worker,
};

use crate::config::{Config, Loaded};
use crate::module::StageEnv;
use crate::nf::plane::ControlPlane;
use crate::registry;
use crate::state::{IfaceRt, LcoreRt, PortRt, State, render_topology};
use crate::summary::{self, Summary};
use crate::topology::HostTopology;
use crate::watchdog::Watchdog;
use pollfwd_nf::forward::table::DEFAULT_MTU;
use pollfwd_pipeline::vlan::{IFACE_BASE, VlanCounters, VlanIface, VlanMap};

/// How long shutdown waits for the workers to return after the quit flag before it forces the
/// exit (a second SIGINT/SIGTERM forces it at once).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the appliance could not start (nothing is left running: ports and EAL are released by
/// the process exit).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("EAL: {0}")]
    Eal(String),
    #[error("signal handlers: {0}")]
    Signals(String),
    #[error("port '{port}': {msg}")]
    Port { port: String, msg: String },
    #[error("mempool on node {node}: {msg}")]
    Mempool { node: u32, msg: String },
    /// A network function's start-up (its message names it).
    #[error("{0}")]
    Nf(String),
    #[error("lcore {lcore}: {msg}")]
    Lcore { lcore: u32, msg: String },
    #[error("control socket: {0}")]
    Control(String),
    /// Queues, rings, launching workers.
    #[error("{0}")]
    Setup(String),
}

impl From<String> for StartError {
    fn from(s: String) -> Self {
        StartError::Setup(s)
    }
}

impl From<dpdk::Error> for StartError {
    fn from(e: dpdk::Error) -> Self {
        StartError::Setup(e.to_string())
    }
}

fn port_err(port: &str) -> impl Fn(dpdk::Error) -> StartError + '_ {
    move |e| StartError::Port {
        port: port.to_string(),
        msg: e.to_string(),
    }
}

/// How the daemon was asked to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop once no packet arrived for this long.
    pub exit_idle: Option<Duration>,
    /// Print per-port rates at this period.
    pub stats_interval: Option<Duration>,
    pub summary_json: bool,
    /// Only print the topology (EAL up, ports probed), then exit.
    pub topology_only: bool,
}

/// Brings the appliance up. Returns the state, the EAL handle and the workers to launch.
fn setup(
    loaded: Loaded,
    topo: HostTopology,
    quit: Arc<AtomicBool>,
) -> Result<(Eal, State, Vec<Worker>), StartError> {
    let c: &Config = &loaded.config;
    let args = c.eal_args();
    let eal = Eal::init(&args).map_err(|e| StartError::Eal(e.to_string()))?;
    let tsc_hz = dpdk::tsc_hz();

    // Ports.
    let mut ports = Vec::new();
    for pc in &c.ports {
        let pc = pc.get_ref();
        let port = Port::by_name(pc.dev_name()).map_err(port_err(pc.name.get_ref()))?;
        let info = port.info()?;
        let ntx = c.tx_lcores(pc.name.get_ref()).len().max(1) as u16;
        let tx_queues = pc.tx_queues.as_ref().map(|t| *t.get_ref()).unwrap_or(ntx);
        ports.push(PortRt {
            name: pc.name.get_ref().clone(),
            socket: port.socket(),
            mac: port.mac(),
            mtu: pc
                .mtu
                .as_ref()
                .map(|m| *m.get_ref())
                .or_else(|| port.mtu())
                .unwrap_or(DEFAULT_MTU),
            device: pc.dev_name().to_string(),
            driver: info.driver,
            rx_queues: pc.rx_queues,
            tx_queues,
            port,
            totals: Default::default(),
        });
    }
    let port_ids: Vec<u16> = ports.iter().map(|p| p.port.id()).collect();
    let ifaces = iface_rts(c, &ports);
    let (iface_ids, iface_macs, iface_mtus) = crate::state::iface_facts(&ifaces);

    // One pool per NUMA node that has a worker lcore.
    let mut pools: BTreeMap<u32, Mempool> = BTreeMap::new();
    for l in &c.lcores {
        let id = *l.get_ref().id.get_ref();
        let node = eal.lcore_socket(id);
        if let std::collections::btree_map::Entry::Vacant(e) = pools.entry(node) {
            let mp = Mempool::create(
                &format!("pf_mbuf_n{node}"),
                *c.mempool.mbufs.get_ref(),
                *c.mempool.cache.get_ref(),
                *c.mempool.data_room.get_ref(),
                node as i32,
            )
            .map_err(|e| StartError::Mempool {
                node,
                msg: e.to_string(),
            })?;
            e.insert(mp);
        }
    }

    // Configure ports: each rx queue takes buffers from the pool of the node of its lcore.
    let (mut tx_insert, mut rx_strip, mut vlan_offloads) = (Vec::new(), Vec::new(), Vec::new());
    for (pi, p) in ports.iter().enumerate() {
        let pc = c.ports[pi].get_ref();
        let mut rx_pools = Vec::new();
        for q in 0..p.rx_queues {
            let l = c
                .lcores
                .iter()
                .map(|l| l.get_ref())
                .find(|l| {
                    l.rx.iter()
                        .any(|r| r.get_ref().port == p.name && r.get_ref().queue == q)
                })
                .ok_or_else(|| {
                    StartError::Setup(format!("port '{}' rx queue {q} has no lcore", p.name))
                })?;
            let lid = *l.id.get_ref();
            let node = eal.lcore_socket(lid);
            if let Some(ps) = p.socket
                && ps != node
            {
                eprintln!(
                    "pollfwd: warning: lcore {lid} (node {node}) polls port '{}' on node {ps}: cross-NUMA traffic",
                    p.name
                );
            }
            rx_pools.push(pools[&node]);
        }
        let trunk = c.ifaces().any(|i| i.vlan.is_some() && i.port == pi);
        let setup = PortSetup {
            rx_queues: p.rx_queues,
            tx_queues: p.tx_queues,
            rx_desc: *pc.rx_desc.get_ref(),
            tx_desc: *pc.tx_desc.get_ref(),
            mtu: pc.mtu.as_ref().map(|m| *m.get_ref()),
            promiscuous: pc.promiscuous,
            // Only where the runtime reads the tags: a tag stripped on a port without
            // sub-interfaces would make a tagged frame look untagged.
            vlan_offload: pc.vlan_offload && trunk,
        };
        p.port
            .configure(&setup, &rx_pools)
            .map_err(port_err(&p.name))?;
        if trunk {
            let (strip, insert) = p.port.info()?.vlan_offloads();
            let (strip, insert) = (strip && setup.vlan_offload, insert && setup.vlan_offload);
            if insert {
                tx_insert.push(p.port.id());
            }
            if strip {
                rx_strip.push(p.port.id());
            }
            vlan_offloads.push((p.name.clone(), strip, insert));
        }
    }

    // The punt path: a TAP port per interface with an address, one queue pair per worker.
    let punt = create_punt(c, &ifaces, &eal, &pools)?;

    let vlan_map = Arc::new(
        VlanMap::new(
            &ifaces
                .iter()
                .filter_map(|i| {
                    let (vid, outer) = i.vlan?;
                    Some(VlanIface {
                        id: i.id,
                        parent: port_ids[i.port],
                        vid,
                        outer,
                    })
                })
                .collect::<Vec<_>>(),
            &tx_insert,
        )
        .map_err(StartError::Setup)?
        .with_rx_strip(&rx_strip),
    );
    for (name, strip, insert) in vlan_offloads {
        let on = |b: bool| if b { "by the device" } else { "in software" };
        eprintln!(
            "pollfwd: port '{name}': VLAN tags stripped {}, inserted {} (QinQ outer tags: in software)",
            on(strip),
            on(insert)
        );
    }

    // Pipeline rings, keyed by target lcore.
    let mut rings_in: BTreeMap<u32, (dpdk::RingConsumer, u32)> = BTreeMap::new();
    let mut rings_out: BTreeMap<u32, dpdk::RingProducer> = BTreeMap::new();
    let mut rings = Vec::new();
    for l in &c.lcores {
        let l = l.get_ref();
        if let Some(to) = &l.pipeline_to {
            let (from, to) = (*l.id.get_ref(), *to.get_ref());
            let (p, cons, st) = dpdk::spsc_ring(
                &format!("pf_ring_{from}_{to}"),
                *c.runtime.ring_size.get_ref(),
                eal.lcore_socket(to) as i32,
            )?;
            rings_out.insert(from, p);
            rings_in.insert(to, (cons, from));
            rings.push(st);
        }
    }

    // Workers.
    let loop_cfg = LoopConfig {
        burst: *c.runtime.burst.get_ref(),
        tx_drain_ticks: tsc_hz * *c.runtime.tx_drain_us.get_ref() / 1_000_000,
        housekeeping_ticks: tsc_hz * *c.runtime.housekeeping_us.get_ref() / 1_000_000,
        tsc_hz,
    };
    // The network functions' control-plane state, set up from the config before any stage.
    let mut plane = ControlPlane::new(loaded.clone());
    let boot_env = StageEnv {
        config: c,
        iface_ids: &iface_ids,
        iface_macs: &iface_macs,
        iface_mtus: &iface_mtus,
        worker: 0,
        lcore: 0,
        tsc_hz,
    };
    for nf in registry::ALL {
        let runs = c.lcores.iter().any(|l| {
            l.get_ref()
                .stages
                .get_ref()
                .iter()
                .any(|s| s.get_ref() == nf.name())
        });
        nf.boot(&mut plane, &boot_env, runs)
            .map_err(StartError::Nf)?;
    }
    if !punt.is_empty() {
        let taps: Vec<(u16, u16)> = punt.iter().map(|p| (p.iface_id, p.port.id())).collect();
        let pc = &c.punt;
        let map = pollfwd_nf::forward::punt::PuntMap::new(
            &taps,
            *pc.rate_pps.get_ref(),
            *pc.burst.get_ref(),
        );
        match plane.forward.init.as_mut() {
            Some((shared, _)) => Arc::get_mut(shared)
                .ok_or_else(|| {
                    StartError::Setup(
                        "punt: the forward stage's shared state is already in use".into(),
                    )
                })?
                .set_punt(map),
            None => eprintln!(
                "pollfwd: warning: [punt] is on but no worker runs the forward stage: nothing is punted"
            ),
        }
    }
    let mut tx_next: Vec<u16> = vec![0; ports.len()];
    let mut workers = Vec::new();
    let mut vlan_counters = Vec::new();
    let mut lcores = Vec::new();
    for (index, l) in c.lcores.iter().enumerate() {
        let l = l.get_ref();
        let id = *l.id.get_ref();
        let node = eal.lcore_socket(id);
        let pool = pools[&node];
        let mut sources = Vec::new();
        let mut source_names = Vec::new();
        for r in &l.rx {
            let r = r.get_ref();
            let pi = c.port_index(&r.port).expect("validated");
            let q = ports[pi].port.rx_queue(r.queue)?;
            sources.push((Source::Port(q), port_ids[pi]));
            source_names.push(format!("{}:{}", r.port, r.queue));
        }
        // Each worker reads its own queue of every punt interface (the kernel spreads what
        // it sends over a multi-queue TAP's queues by flow).
        for p in &punt {
            let q = p.port.rx_queue(index as u16)?;
            sources.push((Source::Inject(q), p.iface_id));
            source_names.push(format!("punt:{}:{index}", p.tap));
        }
        if let Some((cons, from)) = rings_in.remove(&id) {
            sources.push((Source::Ring(cons), u16::MAX));
            source_names.push(format!("ring<-lcore{from}"));
        }
        let mut tx: Vec<Option<TxBuffer>> = Vec::new();
        for (pi, p) in ports.iter().enumerate() {
            let pid = p.port.id() as usize;
            if tx.len() <= pid {
                tx.resize_with(pid + 1, || None);
            }
            if c.tx_lcores(&p.name).contains(&id) && tx_next[pi] < p.tx_queues {
                let q = p.port.tx_queue(tx_next[pi])?;
                tx_next[pi] += 1;
                tx[pid] = Some(TxBuffer::new(q, loop_cfg.burst));
            } else if c.tx_lcores(&p.name).contains(&id) {
                eprintln!(
                    "pollfwd: warning: port '{}' has {} tx queue(s), none left for lcore {id}: its packets to that port are dropped (no_tx_queue)",
                    p.name, p.tx_queues
                );
            }
        }
        for p in &punt {
            let pid = p.port.id() as usize;
            if tx.len() <= pid {
                tx.resize_with(pid + 1, || None);
            }
            tx[pid] = Some(TxBuffer::new(
                p.port.tx_queue(index as u16)?,
                loop_cfg.burst,
            ));
        }
        let env = StageEnv {
            config: c,
            iface_ids: &iface_ids,
            iface_macs: &iface_macs,
            iface_mtus: &iface_mtus,
            worker: index,
            lcore: id,
            tsc_hz,
        };
        let mut chain = Vec::new();
        for s in l.stages.get_ref() {
            let nf = registry::get(s.get_ref()).ok_or_else(|| StartError::Lcore {
                lcore: id,
                msg: format!("unknown stage '{}'", s.get_ref()),
            })?;
            chain.push(
                nf.stage(&mut plane, &env)
                    .map_err(|msg| StartError::Lcore { lcore: id, msg })?,
            );
        }
        let sink = match rings_out.remove(&id) {
            Some(p) => Sink::Ring(p),
            None => Sink::Drop,
        };
        let counters = Arc::new(LcoreCounters::default());
        let mailbox = Arc::new(Mailbox::new(64));
        let mut w = Worker::new(
            id,
            index,
            sources,
            chain,
            sink,
            tx,
            counters.clone(),
            mailbox.clone(),
            quit.clone(),
            pool,
            loop_cfg,
        )?;
        let vc = VlanCounters::new(vlan_map.len());
        if !vlan_map.is_empty() {
            w.set_vlans(vlan_map.clone(), vc.clone());
        }
        vlan_counters.push(vc);
        lcores.push(LcoreRt {
            id,
            index,
            cpu: eal.lcore_cpu(id),
            socket: node,
            pool: pool.name(),
            sources: source_names,
            stages: w.stage_names(),
            pipeline_to: l.pipeline_to.as_ref().map(|t| *t.get_ref()),
            counters,
            mailbox,
            health: Default::default(),
        });
        workers.push(w);
    }
    // Hand-off mesh: one SP/SC ring per ordered pair of workers whose chain hands off.
    let nworkers = workers.len();
    let hand: Vec<usize> = (0..nworkers)
        .filter(|&i| workers[i].uses_handoff())
        .collect();
    let mut outs: Vec<Vec<Option<dpdk::RingProducer>>> = (0..nworkers)
        .map(|_| (0..nworkers).map(|_| None).collect())
        .collect();
    let mut ins: Vec<Vec<dpdk::RingConsumer>> = (0..nworkers).map(|_| Vec::new()).collect();
    for &a in &hand {
        for &b in &hand {
            if a == b {
                continue;
            }
            let (la, lb) = (lcores[a].id, lcores[b].id);
            let (p, cons, st) = dpdk::spsc_ring(
                &format!("pf_hand_{la}_{lb}"),
                *c.runtime.ring_size.get_ref(),
                eal.lcore_socket(lb) as i32,
            )?;
            outs[a][b] = Some(p);
            ins[b].push(cons);
            rings.push(st);
        }
    }
    let mut joined = Vec::new();
    for (i, (mut w, (o, n))) in workers
        .into_iter()
        .zip(outs.into_iter().zip(ins))
        .enumerate()
    {
        if hand.contains(&i) {
            w = w.with_handoff(nworkers, o, n)?;
            lcores[i].sources.push("handoff".into());
        } else {
            w.set_workers(nworkers);
        }
        joined.push(w);
    }
    let workers = joined;

    let state = State {
        main_lcore: eal.main_lcore(),
        config: loaded,
        topology: topo,
        ports,
        ifaces,
        vlan_counters,
        pools,
        lcores,
        rings,
        tsc_hz,
        started: Instant::now(),
        quit,
        control: std::sync::Mutex::new(plane),
        punt,
    };
    Ok((eal, state, workers))
}

/// Creates the punt path's TAP ports (`[punt]`): one per interface with an address, named
/// `<prefix><interface>`, with the interface's MAC and MTU; as many queue pairs as workers
/// (worker k reads and writes queue k), each RX queue filled from its worker's pool.
fn create_punt(
    c: &Config,
    ifaces: &[IfaceRt],
    eal: &Eal,
    pools: &BTreeMap<u32, Mempool>,
) -> Result<Vec<crate::punt::PuntRt>, StartError> {
    let mut out = Vec::new();
    let workers = c.lcores.len() as u16;
    for crate::punt::Wanted { index: k, name, .. } in crate::punt::wanted(c) {
        let f = &ifaces[k];
        let tap = crate::punt::tap_name(c.punt.prefix.get_ref(), &name);
        let perr = |msg: String| StartError::Port {
            port: tap.clone(),
            msg: format!("punt interface of '{name}': {msg}"),
        };
        let (device, port) = crate::punt::create_tap(k, &tap, f.mac).map_err(perr)?;
        let rx_pools: Vec<Mempool> = c
            .lcores
            .iter()
            .map(|l| pools[&eal.lcore_socket(*l.get_ref().id.get_ref())])
            .collect();
        let setup = PortSetup {
            rx_queues: workers,
            tx_queues: workers,
            // net_tap reads a frame into up to this many chained mbufs, allocated per queue
            // at setup: a jumbo frame fits in a few; the kernel queues the rest itself.
            rx_desc: 64,
            tx_desc: 512,
            mtu: Some(f.mtu),
            promiscuous: false,
            vlan_offload: false,
        };
        port.configure(&setup, &rx_pools)
            .map_err(|e| perr(e.to_string()))?;
        out.push(crate::punt::PuntRt {
            iface: name.clone(),
            iface_id: f.id,
            tap,
            device,
            port,
        });
    }
    Ok(out)
}

/// Starts the punt ports (link up) and gives their kernel side its settings and addresses.
fn start_punt(state: &State) -> Result<(), StartError> {
    let wanted = crate::punt::wanted(&state.config.config);
    for p in &state.punt {
        p.port.start().map_err(port_err(&p.tap))?;
        let addrs = wanted
            .iter()
            .find(|w| w.name == p.iface)
            .map(|w| w.addrs.clone())
            .unwrap_or_default();
        crate::punt::configure_kernel(&p.tap, &addrs).map_err(|msg| StartError::Port {
            port: p.tap.clone(),
            msg,
        })?;
        eprintln!(
            "pollfwd: punt: interface '{}' <-> Linux '{}' ({} address(es))",
            p.iface,
            p.tap,
            addrs.len()
        );
    }
    Ok(())
}

/// The interfaces at run time, by index: the ports, then the VLAN sub-interfaces (their
/// parent's MAC; their `mtu`, at most the parent's, else the parent's).
fn iface_rts(c: &Config, ports: &[PortRt]) -> Vec<IfaceRt> {
    c.ifaces()
        .enumerate()
        .map(|(i, f)| {
            let p = &ports[f.port];
            match f.vlan {
                None => IfaceRt {
                    name: p.name.clone(),
                    id: p.port.id(),
                    mac: p.mac,
                    mtu: p.mtu,
                    port: f.port,
                    vlan: None,
                },
                Some(v) => IfaceRt {
                    name: v.name.get_ref().clone(),
                    id: IFACE_BASE + (i - ports.len()) as u16,
                    mac: p.mac,
                    mtu: f.mtu.map_or(p.mtu, |m| (*m.get_ref()).min(p.mtu)),
                    port: f.port,
                    vlan: Some((*v.vlan.get_ref(), v.outer())),
                },
            }
        })
        .collect()
}

/// Runs the appliance until a signal, the duration or the idle timeout; returns the exit code.
pub fn run(
    loaded: Loaded,
    opts: &RunOptions,
    on_started: impl FnOnce(&Arc<State>),
) -> Result<i32, StartError> {
    let topo = HostTopology::discover();
    for w in &loaded.warnings {
        eprintln!("pollfwd: warning: {w}");
    }
    dpdk::sys::install_quit_handlers().map_err(|e| StartError::Signals(e.to_string()))?;
    if !opts.topology_only {
        // Before EAL: a control socket we would refuse later fails the start at once.
        crate::server::preflight(&loaded.config.control)
            .map_err(|e| StartError::Control(e.to_string()))?;
    }
    let quit = Arc::new(AtomicBool::new(false));
    let (eal, state, workers) = setup(loaded, topo, quit.clone())?;

    if opts.topology_only {
        print!("{}", render_topology(&state));
        drop(workers);
        shutdown_ports(&state);
        release_eal(eal, &state.config.config);
        return Ok(0);
    }

    // pdump needs DPDK multi-process (dpdk-dumpcap is a secondary process): not with in-memory.
    let pdump = !state.config.config.eal.in_memory;
    if !pdump {
        eprintln!(
            "pollfwd: warning: packet capture (dpdk-pdump, dpdk-dumpcap) is off: it needs [eal] in_memory = false (docs/operations.md)"
        );
    } else if let Err(e) = dpdk::telemetry::pdump_init() {
        eprintln!("pollfwd: warning: packet capture (pdump) unavailable: {e}");
    }
    // The punt interfaces have their addresses before the control socket answers: whoever
    // waits for it (a test, a supervisor starting FRR next) finds them ready.
    start_punt(&state)?;
    let state = Arc::new(state);
    crate::telemetry::register(&state);
    let mgmt =
        crate::server::start(state.clone()).map_err(|e| StartError::Control(e.to_string()))?;
    for p in &state.ports {
        p.port.start().map_err(port_err(&p.name))?;
    }
    let mut launched = Vec::new();
    let leftovers = Leftovers::new();
    let fault = injected_fault();
    for mut w in workers {
        let id = w.lcore;
        w.set_leftovers(leftovers.clone());
        if let Some((lcore, f, after)) = fault
            && lcore == id
        {
            w.set_fault(f, after);
        }
        launched.push(eal.launch(id, move || w.run())?);
    }
    // Routes from the kernel's table, once the workers take new tables.
    crate::fib_sync::start(&state);
    // Port block records of NAT, when configured.
    crate::nf::nat::blocklog::start(&state);
    eprintln!(
        "pollfwd: running: {} port(s), {} worker lcore(s){}",
        state.ports.len(),
        state.lcores.len(),
        opts.duration
            .map(|d| format!(", for {:.1} s", d.as_secs_f64()))
            .unwrap_or_default()
    );
    // Ports up, workers polling, control socket serving: tell systemd (Type=notify).
    crate::notify::ready(&format!(
        "forwarding: {} port(s), {} worker lcore(s)",
        state.ports.len(),
        state.lcores.len()
    ));
    on_started(&state);

    // Wait.
    let start = Instant::now();
    let mut watchdog = Watchdog::new(&state, start);
    let degraded_ok = state.config.config.runtime.keep_running_degraded();
    let mut worker_lost = false;
    let mut last_rx = 0u64;
    let mut last_change = start;
    let mut last_print = start;
    let mut prev = summary::port_totals(&state);
    let mut last_sample = start;
    // Quit signals that do not force the exit: the first one, or none when the run ends on
    // its own (duration, idle, the watchdog).
    let signals_allowed;
    loop {
        std::thread::sleep(Duration::from_millis(20));
        // Port counters are read often enough that a PMD resetting its own (memif when the
        // peer leaves) loses little: see `PortTotals`.
        if last_sample.elapsed() >= Duration::from_millis(100) {
            last_sample = Instant::now();
            for p in &state.ports {
                p.stats();
            }
        }
        if dpdk::sys::quit_requested() {
            signals_allowed = 1;
            break;
        }
        let now = Instant::now();
        let events = watchdog.check(&state.lcores, now);
        for e in &events {
            eprintln!("pollfwd: {e}");
        }
        if events.iter().any(|e| !e.health.is_up()) {
            worker_lost = true;
            if !degraded_ok {
                eprintln!(
                    "pollfwd: stopping (runtime.on_worker_failure = \"exit\"): exit status 1"
                );
                signals_allowed = dpdk::sys::quit_signals();
                break;
            }
        }
        if let Some(d) = opts.duration
            && now - start >= d
        {
            signals_allowed = dpdk::sys::quit_signals();
            break;
        }
        if let Some(idle) = opts.exit_idle {
            let rx: u64 = state
                .lcores
                .iter()
                .map(|l| l.counters.rx_packets.get())
                .sum();
            if rx != last_rx {
                last_rx = rx;
                last_change = now;
            } else if now - last_change >= idle {
                signals_allowed = dpdk::sys::quit_signals();
                break;
            }
        }
        if let Some(iv) = opts.stats_interval
            && now - last_print >= iv
        {
            let cur = summary::port_totals(&state);
            eprintln!(
                "{}",
                summary::rate_line(
                    &state,
                    &prev,
                    &cur,
                    (now - last_print).as_secs_f64(),
                    (now - start).as_secs_f64()
                )
            );
            prev = cur;
            last_print = now;
        }
    }

    // Shut down in order: quit flag, join lcores, stop and close ports, summary.
    crate::notify::stopping();
    quit.store(true, Ordering::Release);
    let joined = join_workers(&eal, launched, SHUTDOWN_GRACE, signals_allowed);
    mgmt.stop();
    if !joined.stuck.is_empty() {
        // Forced: the summary from the counters; ports, rings and EAL stay as they are (a
        // worker may still be polling them) until the process exits.
        let sum = Summary::collect(&state, state.started.elapsed());
        if opts.summary_json {
            println!("{}", sum.to_json());
        } else {
            print!("{}", sum.render());
        }
        let ids = lcore_list(&joined.stuck);
        crate::notify::status(&format!("forced exit: {ids} did not stop"));
        eprintln!("pollfwd: forced exit: {ids} did not stop (ports and EAL not released)");
        release_runtime_dir(&state.config.config);
        dpdk::sys::exit_now(1);
    }
    // Packets still in pipeline / hand-off rings: freed and counted (every worker stopped).
    leftovers.drain();
    // The last port block records (the drain thread runs every 100 ms).
    crate::nf::nat::blocklog::drain(&state, None);
    let ran = state.started.elapsed();
    let sum = Summary::collect(&state, ran);
    if pdump {
        dpdk::telemetry::pdump_uninit();
    }
    shutdown_ports(&state);
    if opts.summary_json {
        println!("{}", sum.to_json());
    } else {
        print!("{}", sum.render());
    }
    release_eal(eal, &state.config.config);
    Ok(if joined.failed || worker_lost { 1 } else { 0 })
}

/// A fault to inject into one worker, from `POLLFWD_FAULT=<panic|stall>@<lcore>:<after_ms>[:<stall_ms>]`
/// (how the watchdog is tested against real workers). Debug builds only: a release build
/// ignores the variable.
fn injected_fault() -> Option<(u32, Fault, Duration)> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let v = std::env::var("POLLFWD_FAULT").ok()?;
    let parsed = (|| {
        let (kind, rest) = v.split_once('@')?;
        let mut it = rest.split(':');
        let lcore: u32 = it.next()?.parse().ok()?;
        let after = Duration::from_millis(it.next()?.parse().ok()?);
        let f = match kind {
            "panic" => Fault::Panic,
            "stall" => Fault::Stall(Duration::from_millis(it.next()?.parse().ok()?)),
            _ => return None,
        };
        Some((lcore, f, after))
    })();
    if parsed.is_none() {
        eprintln!("pollfwd: warning: POLLFWD_FAULT '{v}' not understood: ignored");
    }
    parsed
}

/// The end of [`join_workers`].
struct Joined {
    /// A worker returned non-zero (or panicked).
    failed: bool,
    /// Lcores whose worker had not returned when the join was forced.
    stuck: Vec<u32>,
}

/// Waits for every launched worker after the quit flag, at most `grace`, and less if more than
/// `signals_allowed` quit signals have arrived (an operator's second Ctrl-C or SIGTERM). Logs
/// each worker that failed, and why the join was forced.
fn join_workers(
    eal: &Eal,
    launched: Vec<dpdk::Launched>,
    grace: Duration,
    signals_allowed: u32,
) -> Joined {
    let deadline = Instant::now() + grace;
    let mut pending = launched;
    let mut failed = false;
    loop {
        pending.retain(|l| {
            if !l.is_finished() {
                return true;
            }
            let rc = eal.wait(l.lcore());
            if rc != 0 {
                eprintln!("pollfwd: lcore {} returned {rc}", l.lcore());
                failed = true;
            }
            false
        });
        if pending.is_empty() {
            return Joined {
                failed,
                stuck: Vec::new(),
            };
        }
        let why = if dpdk::sys::quit_signals() > signals_allowed {
            Some("second signal".to_string())
        } else if Instant::now() >= deadline {
            Some(format!("not stopped within {} s", grace.as_secs_f64()))
        } else {
            None
        };
        if let Some(why) = why {
            let stuck: Vec<u32> = pending.iter().map(|l| l.lcore()).collect();
            eprintln!(
                "pollfwd: {why}: {} still running, forcing the exit",
                lcore_list(&stuck)
            );
            return Joined {
                failed: true,
                stuck,
            };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// "lcore 2" / "lcores 1, 3".
fn lcore_list(ids: &[u32]) -> String {
    let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    format!(
        "lcore{} {}",
        if ids.len() == 1 { "" } else { "s" },
        list.join(", ")
    )
}

/// Last step of a run: EAL cleanup, then the runtime directory EAL made for this instance's
/// file prefix (`/var/run/dpdk/<prefix>`), which nothing needs once the primary is gone.
fn release_eal(eal: Eal, c: &Config) {
    if let Err(e) = eal.cleanup() {
        eprintln!("pollfwd: {e}");
    }
    release_runtime_dir(c);
}

/// Removes `/var/run/dpdk/<prefix>` (the runtime directory EAL made for this file prefix).
fn release_runtime_dir(c: &Config) {
    let prefix = c.eal.file_prefix.as_deref().unwrap_or("pollfwd");
    if !prefix.is_empty() && !prefix.contains('/') && prefix != "." && prefix != ".." {
        let _ = std::fs::remove_dir_all(std::path::Path::new("/var/run/dpdk").join(prefix));
    }
}

fn shutdown_ports(state: &State) {
    // Closing a TAP port removes its Linux interface.
    for p in &state.punt {
        if let Err(e) = p.port.stop().and_then(|_| p.port.close()) {
            eprintln!("pollfwd: punt '{}': {e}", p.tap);
        }
    }
    for p in &state.ports {
        if let Err(e) = p.port.stop() {
            eprintln!("pollfwd: {e}");
        }
        if let Err(e) = p.port.close() {
            eprintln!("pollfwd: {e}");
        }
    }
}
