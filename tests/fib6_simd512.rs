//! The `rte_fib6` wrapper with EAL's SIMD width at 512 bits (its own test binary: EAL starts
//! once per process): a new table takes DPDK's AVX-512 lookup where the CPU has AVX512F, DQ
//! and BW, and that lookup agrees with the scalar one and with a linear-scan model.

use dpdk::fib6::{Fib6, Fib6Config, Lookup};

#[path = "support/fib6_model.rs"]
mod model;

#[test]
fn avx512_lookup_matches_the_model() {
    let _eal = dpdk::Eal::init_private("fib6-simd512", &["--force-max-simd-bitwidth=512"])
        .expect("EAL init");
    assert_eq!(dpdk::acl::max_simd_bitwidth(), 512);
    let cpu = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512bw");
    let mut t = Fib6::new(Fib6Config::default()).unwrap();
    if !cpu {
        eprintln!("this CPU lacks AVX-512: checking that DPDK refuses the vector lookup");
        assert_eq!(t.lookup_fn(), Lookup::Scalar);
        assert!(t.select_lookup(Lookup::Avx512).is_err());
        model::random_table_matches_the_model(&[Lookup::Scalar]);
        return;
    }
    assert_eq!(t.lookup_fn(), Lookup::Avx512, "DPDK's default with AVX-512");
    t.select_lookup(Lookup::Scalar).unwrap();
    assert_eq!(t.lookup_fn(), Lookup::Scalar);
    model::random_table_matches_the_model(&[Lookup::Avx512, Lookup::Scalar]);
}
