//! `[mempool]`: one mbuf pool per NUMA node in use.

use serde::Deserialize;
use toml::Spanned;

use super::Config;
use super::error::{ConfigError, Pos};

/// Mbuf pools: one per NUMA node in use, each of this size.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MempoolConfig {
    /// Mbufs per pool (best 2^n - 1).
    #[serde(default = "MempoolConfig::d_mbufs")]
    pub mbufs: Spanned<u32>,
    /// Per-lcore cache (0..=512, DPDK's limit).
    #[serde(default = "MempoolConfig::d_cache")]
    pub cache: Spanned<u32>,
    /// Buffer size incl. 128 bytes headroom.
    #[serde(default = "MempoolConfig::d_room")]
    pub data_room: Spanned<u16>,
}

impl MempoolConfig {
    fn d_mbufs() -> Spanned<u32> {
        Spanned::new(0..0, 16383)
    }
    fn d_cache() -> Spanned<u32> {
        Spanned::new(0..0, 256)
    }
    fn d_room() -> Spanned<u16> {
        Spanned::new(0..0, 2176)
    }
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            mbufs: Self::d_mbufs(),
            cache: Self::d_cache(),
            data_room: Self::d_room(),
        }
    }
}

pub(super) fn validate(c: &Config, pos: &Pos<'_>) -> Result<(), ConfigError> {
    let mb = *c.mempool.mbufs.get_ref();
    if mb < 1024 {
        return Err(pos.err(
            c.mempool.mbufs.span(),
            format!("mempool.mbufs {mb} is too small (>= 1024)"),
        ));
    }
    // rte_mempool_create refuses a cache above RTE_MEMPOOL_CACHE_MAX_SIZE (512) or whose flush
    // threshold (1.5 x cache) exceeds the pool (never the case with >= 1024 mbufs).
    let cache = *c.mempool.cache.get_ref();
    if cache > 512 {
        return Err(pos.err(
            c.mempool.cache.span(),
            format!("mempool.cache {cache} must be 0..=512 (RTE_MEMPOOL_CACHE_MAX_SIZE)"),
        ));
    }
    if *c.mempool.data_room.get_ref() < 256 + 128 {
        return Err(pos.err(
            c.mempool.data_room.span(),
            "mempool.data_room must be >= 384",
        ));
    }
    Ok(())
}
