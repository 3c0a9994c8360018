//! Policer definitions: meter profiles (srTCM, trTCM) and their run-time meters, the action
//! per colour, per-source limits, the pre-colouring of colour-aware policers by DSCP
//! (RFC 2597) and DSCP names.

use dpdk::meter::{Color, Srtcm, SrtcmProfile, Trtcm, TrtcmProfile};

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

/// Run-time state of one meter.
#[derive(Debug, Clone, Copy)]
pub enum MeterState {
    Srtcm(Srtcm),
    Trtcm(Trtcm),
}

impl MeterState {
    /// A meter with full buckets whose clock starts at `now`.
    pub fn new(p: &Profile, now: u64) -> MeterState {
        match p {
            Profile::Srtcm(p) => MeterState::Srtcm(Srtcm::new(p, now)),
            Profile::Trtcm(p) => MeterState::Trtcm(Trtcm::new(p, now)),
        }
    }

    /// Colours a packet. A meter of the other kind (the profile was changed live) restarts
    /// with full buckets.
    #[inline]
    pub fn check(&mut self, p: &Profile, now: u64, len: u32, input: Option<Color>) -> Color {
        match (self, p) {
            (MeterState::Srtcm(m), Profile::Srtcm(p)) => match input {
                None => m.check_blind(p, now, len),
                Some(c) => m.check_aware(p, now, len, c),
            },
            (MeterState::Trtcm(m), Profile::Trtcm(p)) => match input {
                None => m.check_blind(p, now, len),
                Some(c) => m.check_aware(p, now, len, c),
            },
            (s, p) => {
                *s = MeterState::new(p, now);
                s.check(p, now, len, input)
            }
        }
    }
}

impl Default for MeterState {
    fn default() -> Self {
        MeterState::Srtcm(Srtcm::default())
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
