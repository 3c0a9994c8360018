//! Finds DPDK (>= 22.11) with pkg-config, generates allowlisted bindings with bindgen and
//! compiles `src/shim.c`, which re-exports DPDK's static-inline functions as real symbols.
//!
//! The flags come from running `pkg-config` ourselves: the `pkg-config` crate drops
//! `-include rte_config.h` and `-march=...`, without which DPDK's headers do not compile.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const INSTALL_HINT: &str = "run `sudo scripts/install-deps.sh` (or `apt-get install libdpdk-dev \
                            libclang-dev pkg-config libhwloc-dev libpcap-dev clang`)";

fn fail(msg: &str) -> ! {
    // One clear sentence, then stop: cargo shows this as the build script's error.
    eprintln!("error: {msg}");
    println!("cargo::error={msg}");
    std::process::exit(1);
}

fn pkg_config(args: &[&str]) -> String {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output()
        .unwrap_or_else(|_| fail(&format!("pkg-config is not installed; {INSTALL_HINT}")));
    if !out.status.success() {
        fail(&format!(
            "DPDK (pkg-config module `libdpdk`) was not found; {INSTALL_HINT}"
        ));
    }
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    println!("cargo:rerun-if-changed=src/shim.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let version = pkg_config(&["--modversion"]);
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (22, 11) {
        fail(&format!(
            "DPDK {version} is too old: pollfwd needs DPDK >= 22.11; {INSTALL_HINT}"
        ));
    }
    println!("cargo:rustc-env=POLLFWD_DPDK_VERSION={version}");

    let cflags: Vec<String> = pkg_config(&["--cflags"])
        .split_whitespace()
        .map(str::to_string)
        .collect();

    // Link: pkg-config's library list (with --as-needed only what we call stays), plus the
    // driver-specific libraries whose APIs we call directly.
    for tok in pkg_config(&["--libs"]).split_whitespace() {
        if let Some(dir) = tok.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(lib) = tok.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={lib}");
        }
    }
    println!("cargo:rustc-link-lib=dylib=rte_net_ring");
    // rte_vdev_init: the punt path's TAP ports are created after EAL starts.
    println!("cargo:rustc-link-lib=dylib=rte_bus_vdev");

    let mut build = cc::Build::new();
    build.file("src/shim.c").opt_level(3).warnings(false);
    for f in &cflags {
        build.flag(f);
    }
    build.compile("pollfwd_shim");

    if let Err(e) = std::panic::catch_unwind(clang_sys_check) {
        drop(e);
        fail(&format!(
            "libclang was not found for bindgen; {INSTALL_HINT}"
        ));
    }

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let mut b = bindgen::Builder::default()
        .header("src/shim.h")
        .clang_args(cflags.iter())
        .layout_tests(false)
        .derive_default(true)
        .generate_comments(false)
        .prepend_enum_name(false)
        .opaque_type("rte_mempool")
        .opaque_type("rte_ring")
        .opaque_type("rte_eth_dev_info")
        .opaque_type("rte_acl_ctx")
        .opaque_type("rte_lpm")
        .blocklist_type("rte_arp_hdr")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for f in [
        "rte_eal_init",
        "rte_eal_cleanup",
        "rte_eal_remote_launch",
        "rte_eal_wait_lcore",
        "rte_eal_get_lcore_state",
        "rte_lcore_count",
        "rte_get_main_lcore",
        "rte_get_next_lcore",
        "rte_lcore_to_socket_id",
        "rte_lcore_to_cpu_id",
        "rte_lcore_is_enabled",
        "rte_socket_count",
        "rte_get_tsc_hz",
        "rte_strerror",
        "rte_version",
        "rte_pktmbuf_pool_create",
        "rte_mempool_free",
        "rte_mempool_avail_count",
        "rte_mempool_in_use_count",
        "rte_eth_dev_count_avail",
        "rte_eth_dev_get_port_by_name",
        "rte_eth_dev_get_name_by_port",
        "rte_eth_dev_info_get",
        "rte_eth_dev_configure",
        "rte_eth_dev_adjust_nb_rx_tx_desc",
        "rte_eth_rx_queue_setup",
        "rte_eth_tx_queue_setup",
        "rte_eth_dev_start",
        "rte_eth_dev_stop",
        "rte_eth_dev_close",
        "rte_eth_dev_socket_id",
        "rte_eth_dev_set_mtu",
        "rte_eth_dev_get_mtu",
        "rte_eth_promiscuous_enable",
        "rte_eth_link_get_nowait",
        "rte_eth_link_speed_to_str",
        "rte_eth_macaddr_get",
        "rte_eth_stats_get",
        "rte_eth_stats_reset",
        "rte_eth_xstats_get_names",
        "rte_eth_xstats_get",
        "rte_eth_xstats_reset",
        "rte_eth_dev_is_valid_port",
        "rte_eth_from_rings",
        "rte_vdev_init",
        "rte_vdev_uninit",
        "rte_ring_create",
        "rte_ring_free",
        "rte_pdump_init",
        "rte_pdump_uninit",
        "rte_telemetry_register_cmd",
        "rte_tel_data_start_dict",
        "rte_tel_data_add_dict_u64",
        "rte_tel_data_add_dict_string",
        "rte_lpm_create",
        "rte_lpm_free",
        "rte_lpm_add",
        "rte_lpm_delete",
        "rte_lpm_delete_all",
        "rte_fib_create",
        "rte_fib_free",
        "rte_fib_add",
        "rte_fib_delete",
        "rte_fib_lookup_bulk",
        "rte_fib_get_rib",
        "rte_rib_lookup_exact",
        "rte_fib6_create",
        "rte_fib6_free",
        "rte_fib6_add",
        "rte_fib6_delete",
        "rte_fib6_lookup_bulk",
        "rte_fib6_select_lookup",
        "rte_fib6_get_rib",
        "rte_rib6_lookup_exact",
        "rte_lpm6_create",
        "rte_lpm6_free",
        "rte_lpm6_add",
        "rte_lpm6_delete",
        "rte_lpm6_lookup",
        "rte_lpm6_lookup_bulk_func",
        "rte_acl_create",
        "rte_acl_free",
        "rte_acl_add_rules",
        "rte_acl_build",
        "rte_acl_classify",
        "rte_acl_classify_alg",
        "rte_acl_set_ctx_classify",
        "rte_acl_reset",
        "rte_vect_get_max_simd_bitwidth",
        "rte_meter_srtcm_profile_config",
        "rte_meter_srtcm_config",
        "rte_meter_trtcm_profile_config",
        "rte_meter_trtcm_config",
        "rte_eth_call_rx_callbacks",
        "rte_eth_call_tx_callbacks",
        "pf_.*",
    ] {
        b = b.allowlist_function(f);
    }
    for t in [
        "rte_mbuf",
        "rte_eth_conf",
        "rte_eth_rxconf",
        "rte_eth_txconf",
        "rte_eth_link",
        "rte_eth_stats",
        "rte_eth_xstat",
        "rte_eth_xstat_name",
        "rte_ether_addr",
        "rte_lpm_config",
        "rte_fib_conf",
        "rte_fib6_conf",
        "rte_lpm6_config",
        "rte_acl_param",
        "rte_acl_config",
        "rte_acl_field_def",
        "rte_acl_rule_data",
        "rte_meter_.*",
        "rte_lcore_state_t",
        "rte_eth_fp_ops",
        "pf_.*",
    ] {
        b = b.allowlist_type(t);
    }
    for v in [
        "RTE_ETH_.*",
        "RTE_MBUF_.*",
        "RTE_PKTMBUF_HEADROOM",
        "RING_F_.*",
        "RTE_MAX_LCORE",
        "RTE_MAX_ETHPORTS",
        "SOCKET_ID_ANY",
        "RTE_ACL_.*",
        "RTE_ETHER_.*",
        "RTE_LPM_.*",
        "RTE_FIB_.*",
        "RTE_FIB6_.*",
        "RTE_LPM6_.*",
        "rte_eth_fp_ops",
    ] {
        b = b.allowlist_var(v);
    }
    let bindings = b.generate().unwrap_or_else(|e| {
        fail(&format!(
            "bindgen failed on DPDK headers ({e}); {INSTALL_HINT}"
        ))
    });
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");
}

/// bindgen loads libclang at run time and panics if it is missing; probe it first so the user
/// sees the install hint instead of a backtrace.
fn clang_sys_check() {
    let ok = Command::new("sh")
        .arg("-c")
        .arg("ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* 2>/dev/null | grep -q .")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok && env::var_os("LIBCLANG_PATH").is_none() {
        panic!("libclang missing");
    }
}
