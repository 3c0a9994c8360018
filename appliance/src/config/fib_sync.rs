//! `[fib_sync]`: the forward stage's routes from the kernel's routing table (docs/forward.md,
//! "Routes from a routing daemon"). A routing daemon (FRR's zebra) installs its routes in a
//! table of the kernel of pollfwd's namespace, out of the punt interfaces; pollfwd reads that
//! table over rtnetlink and installs its routes in its own FIB.

use serde::Deserialize;
use toml::Spanned;

use super::Config;
use super::error::{ConfigError, Pos};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FibSyncConfig {
    /// Whether routes are read from the kernel (off by default).
    #[serde(default = "FibSyncConfig::d_enable")]
    pub enable: Spanned<bool>,
    /// The kernel routing table read (254: main).
    #[serde(default = "FibSyncConfig::d_table")]
    pub table: Spanned<u32>,
    /// Most routes taken from the kernel (both families); more are refused.
    #[serde(default = "FibSyncConfig::d_max_routes")]
    pub max_routes: Spanned<usize>,
    /// Changes are collected until none came for this long, then installed as one table.
    #[serde(default = "FibSyncConfig::d_batch_ms")]
    pub batch_ms: Spanned<u64>,
    /// The netlink socket's receive buffer, KiB (the kernel caps it at
    /// `net.core.rmem_max` unless pollfwd runs with CAP_NET_ADMIN, which forces it): a burst
    /// of notifications larger than this is lost and the table read again.
    #[serde(default = "FibSyncConfig::d_socket_buffer_kb")]
    pub socket_buffer_kb: Spanned<u32>,
}

impl Default for FibSyncConfig {
    fn default() -> Self {
        FibSyncConfig {
            enable: Self::d_enable(),
            table: Self::d_table(),
            max_routes: Self::d_max_routes(),
            batch_ms: Self::d_batch_ms(),
            socket_buffer_kb: Self::d_socket_buffer_kb(),
        }
    }
}

impl FibSyncConfig {
    fn d_enable() -> Spanned<bool> {
        Spanned::new(0..0, false)
    }
    fn d_table() -> Spanned<u32> {
        Spanned::new(0..0, 254)
    }
    fn d_max_routes() -> Spanned<usize> {
        Spanned::new(0..0, 1_000_000)
    }
    fn d_batch_ms() -> Spanned<u64> {
        Spanned::new(0..0, 5)
    }
    fn d_socket_buffer_kb() -> Spanned<u32> {
        Spanned::new(0..0, 32 * 1024)
    }
}

/// Largest `socket_buffer_kb` (1 GiB).
pub const SOCKET_BUFFER_KB_MAX: u32 = 1 << 20;

/// Most routes `max_routes` may allow.
pub const MAX_ROUTES_LIMIT: usize = 4_000_000;

pub fn validate(c: &Config, pos: &Pos<'_>) -> Result<(), ConfigError> {
    let f = &c.fib_sync;
    let table = *f.table.get_ref();
    if table == 0 || table == 255 {
        return Err(pos.err(
            f.table.span(),
            format!(
                "fib_sync table {table}: 0 is no table and 255 the kernel's local table (main is 254)"
            ),
        ));
    }
    let max = *f.max_routes.get_ref();
    if max == 0 || max > MAX_ROUTES_LIMIT {
        return Err(pos.err(
            f.max_routes.span(),
            format!("fib_sync max_routes {max}: 1..={MAX_ROUTES_LIMIT}"),
        ));
    }
    let b = *f.batch_ms.get_ref();
    if !(1..=1000).contains(&b) {
        return Err(pos.err(
            f.batch_ms.span(),
            format!("fib_sync batch_ms {b}: 1..=1000"),
        ));
    }
    let kb = *f.socket_buffer_kb.get_ref();
    if !(4..=SOCKET_BUFFER_KB_MAX).contains(&kb) {
        return Err(pos.err(
            f.socket_buffer_kb.span(),
            format!("fib_sync socket_buffer_kb {kb}: 4..={SOCKET_BUFFER_KB_MAX}"),
        ));
    }
    if *f.enable.get_ref() && !c.punt.enable {
        return Err(pos.err(
            f.enable.span(),
            "fib_sync needs the punt path ([punt] enable = true): the kernel's routes name pollfwd's interfaces through their punt interfaces",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    const BASE: &str = "[[port]]\nname = \"p0\"\ndevice = \"net_null0\"\naddress = \"192.0.2.1/24\"\n[[lcore]]\nid = 1\nrx = [{ port = \"p0\" }]\nstages = [\"forward\"]\n";

    fn parse(extra: &str) -> Result<crate::config::Config, String> {
        crate::config::parse_core("t.toml", &format!("{BASE}{extra}"))
            .map(|(c, _)| c)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn off_by_default_and_checked_with_position() {
        let c = parse("").unwrap();
        assert!(!c.fib_sync.enable.get_ref());
        assert_eq!(*c.fib_sync.table.get_ref(), 254);
        let c = parse("[punt]\nenable = true\n[fib_sync]\nenable = true\ntable = 100\n").unwrap();
        assert!(*c.fib_sync.enable.get_ref());
        assert_eq!(*c.fib_sync.table.get_ref(), 100);
        let e = parse("[fib_sync]\nenable = true\n").unwrap_err();
        assert!(e.starts_with("t.toml:10:10:"), "{e}");
        assert!(e.contains("needs the punt path"), "{e}");
        let e =
            parse("[punt]\nenable = true\n[fib_sync]\nenable = true\ntable = 255\n").unwrap_err();
        assert!(e.starts_with("t.toml:13:9:"), "{e}");
        let e = parse("[fib_sync]\nmax_routes = 0\n").unwrap_err();
        assert!(e.starts_with("t.toml:10:14:"), "{e}");
        let e = parse("[fib_sync]\nbatch_ms = 0\n").unwrap_err();
        assert!(e.contains("batch_ms 0"), "{e}");
        let e = parse("[fib_sync]\nsocket_buffer_kb = 2\n").unwrap_err();
        assert!(e.starts_with("t.toml:10:20:"), "{e}");
        assert!(e.contains("socket_buffer_kb 2: 4..=1048576"), "{e}");
        let e = parse("[fib_sync]\ntabel = 3\n").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }
}
