//! DPDK's `rte_meter`: the single-rate three-colour marker (srTCM, RFC 2697) and the two-rate
//! three-colour marker (trTCM, RFC 2698), colour-blind and colour-aware.
//!
//! A *profile* holds the rates and burst sizes converted to TSC periods; it is built off the
//! data path (EAL must be up: `rte_meter` reads `rte_get_tsc_hz()` at profile time) and is
//! plain data afterwards, so it can be copied into per-lcore tables and swapped live. A
//! *meter* is the run-time state of the token buckets (plain data too, one per lcore and per
//! metered flow). Checks take the time as a TSC value given by the caller, so tests can drive
//! a controlled clock; the data path passes the burst's receive TSC.
//!
//! Rates are in bytes per second and bursts in bytes, as `rte_meter` wants them.
//!
//! The policer stage takes its profiles from here but does the checks with the same
//! arithmetic in Rust (`pollfwd_nf::policer::tcm`: a shim call per packet cost more than the
//! whole check); the checks here are the reference its differential test compares against.

use crate::error::{Error, Result};
use crate::ffi;

/// A packet colour. The numeric values are `rte_color`'s and those kept in
/// [`crate::PktMeta::color`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum Color {
    #[default]
    Green = 0,
    Yellow = 1,
    Red = 2,
}

impl Color {
    /// All colours, in order (index = `as usize`).
    pub const ALL: [Color; 3] = [Color::Green, Color::Yellow, Color::Red];

    /// Colour from a metadata byte; values above 2 count as red (the most restrictive).
    #[inline]
    pub fn from_u8(v: u8) -> Color {
        match v {
            0 => Color::Green,
            1 => Color::Yellow,
            _ => Color::Red,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Color::Green => "green",
            Color::Yellow => "yellow",
            Color::Red => "red",
        }
    }

    #[inline]
    fn to_ffi(self) -> ffi::rte_color {
        match self {
            Color::Green => ffi::RTE_COLOR_GREEN,
            Color::Yellow => ffi::RTE_COLOR_YELLOW,
            Color::Red => ffi::RTE_COLOR_RED,
        }
    }

    #[inline]
    fn from_ffi(c: ffi::rte_color) -> Color {
        match c {
            ffi::RTE_COLOR_GREEN => Color::Green,
            ffi::RTE_COLOR_YELLOW => Color::Yellow,
            _ => Color::Red,
        }
    }
}

/// srTCM parameters (RFC 2697 §2): committed information rate in bytes per second, committed
/// and excess burst sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SrtcmParams {
    pub cir: u64,
    pub cbs: u64,
    pub ebs: u64,
}

/// trTCM parameters (RFC 2698 §2): committed and peak information rates in bytes per second,
/// committed and peak burst sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrtcmParams {
    pub cir: u64,
    pub pir: u64,
    pub cbs: u64,
    pub pbs: u64,
}

fn need_eal(what: &str) -> Result<()> {
    if crate::eal::is_initialized() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what}: EAL is not up (rte_meter needs the TSC frequency)"
        )))
    }
}

/// An srTCM profile (rates converted to TSC periods).
#[derive(Debug, Clone, Copy)]
pub struct SrtcmProfile {
    p: ffi::rte_meter_srtcm_profile,
    params: SrtcmParams,
}

impl SrtcmProfile {
    /// Builds a profile. RFC 2697 §2: CIR > 0, and CBS or EBS > 0 (rte_meter refuses the rest).
    pub fn new(params: SrtcmParams) -> Result<SrtcmProfile> {
        need_eal("rte_meter_srtcm_profile_config")?;
        let mut p = ffi::rte_meter_srtcm_profile::default();
        let mut raw = ffi::rte_meter_srtcm_params {
            cir: params.cir,
            cbs: params.cbs,
            ebs: params.ebs,
        };
        // SAFETY: p and raw are valid, exclusively borrowed structs; EAL is up (checked), so
        // the TSC frequency the function reads is set.
        let rc = unsafe { ffi::rte_meter_srtcm_profile_config(&mut p, &mut raw) };
        crate::error::check(rc, || {
            format!(
                "rte_meter_srtcm_profile_config(cir={}, cbs={}, ebs={})",
                params.cir, params.cbs, params.ebs
            )
        })?;
        Ok(SrtcmProfile { p, params })
    }

    /// The profile as the pointer rte_meter's checks take. They only read through it (the
    /// `const` is missing from DPDK's prototypes), so handing out `*mut` from `&self` is sound.
    #[inline]
    fn as_ptr(&self) -> *mut ffi::rte_meter_srtcm_profile {
        &self.p as *const _ as *mut _
    }

    pub fn params(&self) -> SrtcmParams {
        self.params
    }

    /// TSC ticks per token-bucket update, and bytes added per update.
    pub fn cir_period(&self) -> (u64, u64) {
        (self.p.cir_period, self.p.cir_bytes_per_period)
    }

    /// Sizes of the committed and excess buckets (CBS, EBS), bytes, as rte_meter holds them.
    pub fn bucket_sizes(&self) -> (u64, u64) {
        (self.p.cbs, self.p.ebs)
    }
}

/// A trTCM profile (rates converted to TSC periods).
#[derive(Debug, Clone, Copy)]
pub struct TrtcmProfile {
    p: ffi::rte_meter_trtcm_profile,
    params: TrtcmParams,
}

impl TrtcmProfile {
    /// Builds a profile. RFC 2698 §2: PIR >= CIR > 0, PBS and CBS > 0.
    pub fn new(params: TrtcmParams) -> Result<TrtcmProfile> {
        need_eal("rte_meter_trtcm_profile_config")?;
        let mut p = ffi::rte_meter_trtcm_profile::default();
        let mut raw = ffi::rte_meter_trtcm_params {
            cir: params.cir,
            pir: params.pir,
            cbs: params.cbs,
            pbs: params.pbs,
        };
        // SAFETY: as in SrtcmProfile::new.
        let rc = unsafe { ffi::rte_meter_trtcm_profile_config(&mut p, &mut raw) };
        crate::error::check(rc, || {
            format!(
                "rte_meter_trtcm_profile_config(cir={}, pir={}, cbs={}, pbs={})",
                params.cir, params.pir, params.cbs, params.pbs
            )
        })?;
        Ok(TrtcmProfile { p, params })
    }

    /// See [`SrtcmProfile::as_ptr`].
    #[inline]
    fn as_ptr(&self) -> *mut ffi::rte_meter_trtcm_profile {
        &self.p as *const _ as *mut _
    }

    pub fn params(&self) -> TrtcmParams {
        self.params
    }

    /// TSC ticks per committed-bucket update, and bytes added per update.
    pub fn cir_period(&self) -> (u64, u64) {
        (self.p.cir_period, self.p.cir_bytes_per_period)
    }

    /// TSC ticks per peak-bucket update, and bytes added per update.
    pub fn pir_period(&self) -> (u64, u64) {
        (self.p.pir_period, self.p.pir_bytes_per_period)
    }

    /// Sizes of the committed and peak buckets (CBS, PBS), bytes, as rte_meter holds them.
    pub fn bucket_sizes(&self) -> (u64, u64) {
        (self.p.cbs, self.p.pbs)
    }
}

/// srTCM run-time state: the C and E token buckets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Srtcm(ffi::rte_meter_srtcm);

impl Srtcm {
    /// A meter with both buckets full (RFC 2697 §3: Tc(0) = CBS, Te(0) = EBS) whose clock
    /// starts at `now` (TSC).
    pub fn new(p: &SrtcmProfile, now: u64) -> Srtcm {
        let mut m = ffi::rte_meter_srtcm::default();
        let mut prof = p.p;
        // SAFETY: both structs are valid and exclusively borrowed; the function only fills m
        // from prof (it cannot fail with non-null arguments).
        unsafe { ffi::rte_meter_srtcm_config(&mut m, &mut prof) };
        // rte_meter starts the clock at rte_rdtsc(); the caller's clock may be behind it (a
        // burst's receive time), which would look like a wrapped, huge time difference.
        m.time = now;
        Srtcm(m)
    }

    /// Tokens in the committed and excess buckets, bytes.
    pub fn tokens(&self) -> (u64, u64) {
        (self.0.tc, self.0.te)
    }

    /// TSC of the buckets' last update (the meter's clock: whole periods only).
    pub fn time(&self) -> u64 {
        self.0.time
    }

    /// Colour-blind check of a packet of `len` bytes at TSC `time` (RFC 2697 §3).
    #[inline]
    pub fn check_blind(&mut self, p: &SrtcmProfile, time: u64, len: u32) -> Color {
        let time = time.max(self.0.time);
        // SAFETY: self.0 is a valid, exclusively borrowed plain struct; the check only reads
        // the profile (see as_ptr); time is not behind the meter's clock (clamped above), so
        // the period arithmetic cannot wrap.
        Color::from_ffi(unsafe {
            ffi::pf_meter_srtcm_color_blind_check(&mut self.0, p.as_ptr(), time, len)
        })
    }

    /// Colour-aware check of a packet pre-coloured `input` (RFC 2697 §3).
    #[inline]
    pub fn check_aware(&mut self, p: &SrtcmProfile, time: u64, len: u32, input: Color) -> Color {
        let time = time.max(self.0.time);
        // SAFETY: as in check_blind; input is a valid rte_color.
        Color::from_ffi(unsafe {
            ffi::pf_meter_srtcm_color_aware_check(
                &mut self.0,
                p.as_ptr(),
                time,
                len,
                input.to_ffi(),
            )
        })
    }
}

/// trTCM run-time state: the P and C token buckets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trtcm(ffi::rte_meter_trtcm);

impl Trtcm {
    /// A meter with both buckets full (RFC 2698 §3: Tp(0) = PBS, Tc(0) = CBS) whose clock
    /// starts at `now` (TSC).
    pub fn new(p: &TrtcmProfile, now: u64) -> Trtcm {
        let mut m = ffi::rte_meter_trtcm::default();
        let mut prof = p.p;
        // SAFETY: as in Srtcm::new.
        unsafe { ffi::rte_meter_trtcm_config(&mut m, &mut prof) };
        m.time_tc = now;
        m.time_tp = now;
        Trtcm(m)
    }

    /// Tokens in the committed and peak buckets, bytes.
    pub fn tokens(&self) -> (u64, u64) {
        (self.0.tc, self.0.tp)
    }

    /// TSC of the committed and peak buckets' last updates.
    pub fn times(&self) -> (u64, u64) {
        (self.0.time_tc, self.0.time_tp)
    }

    /// Colour-blind check of a packet of `len` bytes at TSC `time` (RFC 2698 §3).
    #[inline]
    pub fn check_blind(&mut self, p: &TrtcmProfile, time: u64, len: u32) -> Color {
        let time = time.max(self.0.time_tc).max(self.0.time_tp);
        // SAFETY: as in Srtcm::check_blind.
        Color::from_ffi(unsafe {
            ffi::pf_meter_trtcm_color_blind_check(&mut self.0, p.as_ptr(), time, len)
        })
    }

    /// Colour-aware check of a packet pre-coloured `input` (RFC 2698 §3).
    #[inline]
    pub fn check_aware(&mut self, p: &TrtcmProfile, time: u64, len: u32, input: Color) -> Color {
        let time = time.max(self.0.time_tc).max(self.0.time_tp);
        // SAFETY: as in Srtcm::check_aware.
        Color::from_ffi(unsafe {
            ffi::pf_meter_trtcm_color_aware_check(
                &mut self.0,
                p.as_ptr(),
                time,
                len,
                input.to_ffi(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_match_rte_color_and_meta() {
        for c in Color::ALL {
            assert_eq!(Color::from_ffi(c.to_ffi()), c);
            assert_eq!(Color::from_u8(c as u8), c);
        }
        assert_eq!(Color::from_u8(7), Color::Red);
    }

    #[test]
    fn profile_needs_eal() {
        if crate::eal::is_initialized() {
            return;
        }
        let e = SrtcmProfile::new(SrtcmParams {
            cir: 1000,
            cbs: 1000,
            ebs: 0,
        })
        .unwrap_err();
        assert!(e.op.contains("EAL is not up"), "{e}");
    }
}
