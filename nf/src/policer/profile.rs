//! Policer definitions: meter profiles (srTCM, trTCM) and their run-time meters, the action
//! per colour, per-source limits, the pre-colouring of colour-aware policers by DSCP
//! (RFC 2597) and DSCP names.

use dpdk::meter::{Color, SrtcmProfile, TrtcmProfile};

use super::tcm::{SrMeter, SrParams, Tcm, TrMeter, TrParams};

/// A meter profile (rates and bursts, converted to TSC periods by DPDK).
#[derive(Debug, Clone, Copy)]
pub enum Profile {
    Srtcm(SrtcmProfile),
    Trtcm(TrtcmProfile),
}

impl Profile {
    pub fn kind(&self) -> &'static str {
        match self {
            Profile::Srtcm(_) => "srtcm",
            Profile::Trtcm(_) => "trtcm",
        }
    }
}

/// A profile's bucket sizes and token arrival in the form the Rust meters take ([`tcm`]):
/// read once from the profile `rte_meter` built, when the table is built.
///
/// [`tcm`]: super::tcm
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Params {
    Srtcm(SrParams),
    Trtcm(TrParams),
}

impl Profile {
    pub fn params(&self) -> Params {
        match self {
            Profile::Srtcm(p) => Params::Srtcm(SrParams::of(p)),
            Profile::Trtcm(p) => Params::Trtcm(TrParams::of(p)),
        }
    }
}

/// Run-time state of one meter (the arithmetic of `rte_meter`, in Rust: [`super::tcm`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeterState {
    Srtcm(SrMeter),
    Trtcm(TrMeter),
}

impl MeterState {
    /// A meter with full buckets whose clock starts at `now`.
    pub fn new(p: &Profile, now: u64) -> MeterState {
        MeterState::start(&p.params(), now)
    }

    /// A meter with full buckets whose clock starts at `now`.
    #[inline]
    pub fn start(p: &Params, now: u64) -> MeterState {
        match p {
            Params::Srtcm(p) => MeterState::Srtcm(SrMeter::start(p, now)),
            Params::Trtcm(p) => MeterState::Trtcm(TrMeter::start(p, now)),
        }
    }

    /// Colours a packet of `len` bytes at TSC `now`, pre-coloured `input` (`Green` when
    /// colour-blind). A meter of the other kind (the profile was changed live) restarts with
    /// full buckets.
    #[inline]
    pub fn check(&mut self, p: &Params, now: u64, len: u32, input: Color) -> Color {
        match (self, p) {
            (MeterState::Srtcm(m), Params::Srtcm(p)) => m.check(p, now, len, input),
            (MeterState::Trtcm(m), Params::Trtcm(p)) => m.check(p, now, len, input),
            (s, p) => {
                *s = MeterState::start(p, now);
                s.check(p, now, len, input)
            }
        }
    }

    /// Tokens in the two buckets, bytes: (C, E) for srTCM, (C, P) for trTCM.
    pub fn tokens(&self) -> (u64, u64) {
        match self {
            MeterState::Srtcm(m) => (m.tc, m.te),
            MeterState::Trtcm(m) => (m.tc, m.tp),
        }
    }
}

impl Default for MeterState {
    fn default() -> Self {
        MeterState::Srtcm(SrMeter::default())
    }
}

/// One meter kind, for the stage's loops that are generic over it (picked once per table).
pub trait Kind: Tcm {
    /// The parameters, when `p` is of this kind.
    fn params(p: &Params) -> Option<&Self::Params>;
    /// The meter, when `s` is of this kind.
    fn state(s: &mut MeterState) -> Option<&mut Self>;
    fn wrap(self) -> MeterState;
}

impl Kind for SrMeter {
    #[inline(always)]
    fn params(p: &Params) -> Option<&SrParams> {
        match p {
            Params::Srtcm(p) => Some(p),
            _ => None,
        }
    }
    #[inline(always)]
    fn state(s: &mut MeterState) -> Option<&mut SrMeter> {
        match s {
            MeterState::Srtcm(m) => Some(m),
            _ => None,
        }
    }
    #[inline(always)]
    fn wrap(self) -> MeterState {
        MeterState::Srtcm(self)
    }
}

impl Kind for TrMeter {
    #[inline(always)]
    fn params(p: &Params) -> Option<&TrParams> {
        match p {
            Params::Trtcm(p) => Some(p),
            _ => None,
        }
    }
    #[inline(always)]
    fn state(s: &mut MeterState) -> Option<&mut TrMeter> {
        match s {
            MeterState::Trtcm(m) => Some(m),
            _ => None,
        }
    }
    #[inline(always)]
    fn wrap(self) -> MeterState {
        MeterState::Trtcm(self)
    }
}

/// What happens to a packet of a colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Continue down the chain unchanged.
    Transmit,
    /// Drop (reason `policer_<colour>`).
    Drop,
    /// Set the DSCP to this value (0..=63), then continue.
    Remark(u8),
}

impl Action {
    pub fn describe(&self) -> String {
        match self {
            Action::Transmit => "transmit".into(),
            Action::Drop => "drop".into(),
            Action::Remark(d) => format!("remark:{d}"),
        }
    }
}

/// Per-source metering limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerSource {
    /// Most sources metered at once (per worker); a new source beyond it is dropped as
    /// `policer_table_full`.
    pub max_sources: u32,
    /// A source idle this long (TSC ticks) loses its meter.
    pub idle_ticks: u64,
    /// IPv6 sources are metered per prefix of this length (1..=128; default
    /// [`super::DEFAULT_IPV6_PREFIX`]).
    pub ipv6_prefix: u8,
}

impl PerSource {
    /// Whether a source table built for `other` serves `self` as it is: the same size and IPv6
    /// keys cut at the same prefix (the idle time is a setting of the table, changed in place).
    pub fn same_table(&self, other: &PerSource) -> bool {
        self.max_sources == other.max_sources && self.ipv6_prefix == other.ipv6_prefix
    }
}

/// One policer, as built off the data path.
#[derive(Debug, Clone)]
pub struct PolicerDef {
    pub name: String,
    pub profile: Profile,
    /// Colour-aware: the input colour is the packet's pre-colour (see [`super::PolicerTable`]).
    pub color_aware: bool,
    /// Action per colour, indexed by `Color as usize`.
    pub actions: [Action; 3],
    /// The class it is bound to; `None`: the default policer.
    pub class: Option<u16>,
    pub per_source: Option<PerSource>,
}

/// The default pre-colouring of colour-aware policers, by DSCP: the Assured Forwarding drop
/// precedences of RFC 2597 §6 — AFx1 green, AFx2 yellow, AFx3 red; every other DSCP green.
pub fn rfc2597_precolor() -> [Color; 64] {
    let mut t = [Color::Green; 64];
    for class in 1..=4u8 {
        t[(class * 8 + 4) as usize] = Color::Yellow; // AFx2
        t[(class * 8 + 6) as usize] = Color::Red; // AFx3
    }
    t
}

/// DSCP by value (0..=63) or by name: `BE`/`DF`, `CS0`..`CS7` (RFC 2474), `AF11`..`AF43`
/// (RFC 2597), `EF` (RFC 3246), `VA` (RFC 5865), `LE` (RFC 8622). Case-insensitive.
pub fn parse_dscp(s: &str) -> Option<u8> {
    let u = s.trim().to_ascii_uppercase();
    if let Ok(v) = u.parse::<u8>() {
        return (v <= 63).then_some(v);
    }
    let d = |c: u8| c.wrapping_sub(b'0');
    match u.as_bytes() {
        b"BE" | b"DF" => Some(0),
        b"EF" => Some(46),
        b"VA" => Some(44),
        b"LE" => Some(1),
        [b'C', b'S', n] if d(*n) <= 7 => Some(d(*n) * 8),
        [b'A', b'F', c, p] if (1..=4).contains(&d(*c)) && (1..=3).contains(&d(*p)) => {
            Some(d(*c) * 8 + d(*p) * 2)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dscp_names() {
        assert_eq!(parse_dscp("ef"), Some(46));
        assert_eq!(parse_dscp("AF11"), Some(10));
        assert_eq!(parse_dscp("af12"), Some(12));
        assert_eq!(parse_dscp("AF43"), Some(38));
        assert_eq!(parse_dscp("CS7"), Some(56));
        assert_eq!(parse_dscp("be"), Some(0));
        assert_eq!(parse_dscp("63"), Some(63));
        assert_eq!(parse_dscp("64"), None);
        assert_eq!(parse_dscp("AF44"), None);
        assert_eq!(parse_dscp("AF5"), None);
        assert_eq!(parse_dscp("CS8"), None);
        assert_eq!(parse_dscp(""), None);
    }

    #[test]
    fn rfc2597_precolor_table() {
        let t = rfc2597_precolor();
        for (dscp, c) in [
            (10, 0),
            (12, 1),
            (14, 2),
            (34, 0),
            (36, 1),
            (38, 2),
            (46, 0),
            (0, 0),
        ] {
            assert_eq!(t[dscp] as u8, c, "dscp {dscp}");
        }
    }
}
