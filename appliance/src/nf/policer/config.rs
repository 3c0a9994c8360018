//! Rate limiting: policers bound to classes, to the default, or per source (section [policer]).
//!
//! ```toml
//! [policer]
//! # Colour-aware policers take a packet's input colour from its DSCP (default: RFC 2597,
//! # AFx2 yellow, AFx3 red) and from an earlier stage's colour.
//! precolor_yellow = ["AF12", "AF22", "AF32", "AF42"]
//! precolor_red = ["AF13", "AF23", "AF33", "AF43"]
//!
//! [[policer.policers]]
//! name = "gold"
//! kind = "trtcm"                 # srtcm (RFC 2697: cir, cbs, ebs) | trtcm (RFC 2698: cir, pir, cbs, pbs)
//! units = "bits"                 # rates in bits/s (default) or "bytes" per second
//! cir = 10_000_000
//! pir = 20_000_000
//! cbs = 100_000                  # bursts in bytes
//! pbs = 200_000
//! color_mode = "blind"           # blind (default) | aware
//! green = "transmit"             # transmit (default for green, yellow) | drop (default for red)
//! yellow = "remark:AF12"         # | remark:<DSCP name or 0..63>
//! red = "drop"
//! bind = { class = "gold" }      # a class of [classify]; absent: the default policer;
//!                                # { per_source = true, max_sources = 65536, idle_s = 60,
//!                                #   ipv6_prefix = 64 }
//! ```

use dpdk::meter::{Color, SrtcmParams, SrtcmProfile, TrtcmParams, TrtcmProfile};
use pollfwd_nf::policer::{
    Action, DEFAULT_IPV6_PREFIX, MAX_POLICERS, MAX_SOURCES, PerSource, PolicerDef, PolicerTable,
    Profile, parse_dscp, rfc2597_precolor,
};
use serde_json::{Value, json};
use toml::Spanned;

use crate::config::{Config, ConfigError, ErrAt};

/// Highest rate accepted, bytes per second (1 Tbit/s). rte_meter adds `periods x bytes per
/// period` to a bucket in 64 bits: at this rate an idle meter's first check overflows only
/// after about four years of idleness.
pub const MAX_RATE_BYTES: u64 = 125_000_000_000;
/// Longest idle time of a per-source meter, seconds.
pub const MAX_IDLE_S: u64 = 86_400;
/// Default per-source limits.
pub const DEFAULT_MAX_SOURCES: u32 = 65_536;
pub const DEFAULT_IDLE_S: u64 = 60;

pub use super::section::*;

impl Dscp {
    fn value(&self) -> Option<u8> {
        match self {
            Dscp::Num(n) => (0..=63).contains(n).then_some(*n as u8),
            Dscp::Name(s) => parse_dscp(s),
        }
    }
}

/// Meter algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Single-rate three-colour marker, RFC 2697.
    Srtcm,
    /// Two-rate three-colour marker, RFC 2698.
    Trtcm,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Srtcm => "srtcm",
            Kind::Trtcm => "trtcm",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "srtcm" => Some(Kind::Srtcm),
            "trtcm" => Some(Kind::Trtcm),
            _ => None,
        }
    }
}

/// One policer as the operator configured it (rates in the configured units): what
/// `policer.list` shows and `policer.set` changes. [`PolicerSpec::to_def`] turns it into the
/// data-path form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicerSpec {
    pub name: String,
    pub kind: Kind,
    /// Rates are in bits per second (else bytes per second).
    pub bits: bool,
    pub cir: u64,
    /// trTCM only (0 for srTCM).
    pub pir: u64,
    pub cbs: u64,
    /// srTCM only (0 for trTCM).
    pub ebs: u64,
    /// trTCM only (0 for srTCM).
    pub pbs: u64,
    pub color_aware: bool,
    pub actions: [Action; 3],
    /// Bound class: name and id. `None`: the default policer.
    pub class: Option<(String, u16)>,
    /// The limits of a per-source policer.
    pub per_source: Option<PerSourceSpec>,
}

/// `bind = { per_source = true, ... }`: how many sources, how long an idle one keeps its meter,
/// and which prefix of an IPv6 source is metered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerSourceSpec {
    /// Most sources per worker, each address family.
    pub max_sources: u32,
    pub idle_s: u64,
    /// IPv6 sources are metered per prefix of this length (1..=128).
    pub ipv6_prefix: u8,
}

/// `units`: true for "bits" (per second), false for "bytes"; None for anything else.
pub fn units_are_bits(s: &str) -> Option<bool> {
    match s {
        "bits" => Some(true),
        "bytes" => Some(false),
        _ => None,
    }
}

/// `color_mode`: true for "aware", false for "blind"; None for anything else.
pub fn color_aware(s: &str) -> Option<bool> {
    match s {
        "blind" => Some(false),
        "aware" => Some(true),
        _ => None,
    }
}

/// Parses an action: `transmit`, `drop`, `remark:<DSCP>`.
pub fn parse_action(s: &str) -> Result<Action, String> {
    let t = s.trim();
    match t {
        "transmit" => Ok(Action::Transmit),
        "drop" => Ok(Action::Drop),
        _ => {
            let d = t
                .strip_prefix("remark:")
                .or_else(|| t.strip_prefix("remark "))
                .ok_or_else(|| {
                    format!("action '{s}': use transmit, drop or remark:<DSCP> (e.g. remark:AF12)")
                })?;
            parse_dscp(d).map(Action::Remark).ok_or_else(|| {
                format!("action '{s}': '{d}' is not a DSCP (0..=63, BE, CS0..CS7, AF11..AF43, EF, VA, LE)")
            })
        }
    }
}

impl PolicerSpec {
    /// Bytes per second of a configured rate.
    pub fn rate_bytes(&self, v: u64) -> u64 {
        if self.bits { v / 8 } else { v }
    }

    /// The RFC 2697 / RFC 2698 parameter rules, and pollfwd's bounds. The message names the
    /// offending key first (`cir: ...`) so the config loader can point at it.
    pub fn check(&self) -> Result<(), String> {
        let unit = if self.bits { "bits/s" } else { "bytes/s" };
        let cir = self.rate_bytes(self.cir);
        if cir == 0 {
            return Err(format!(
                "cir: {} {unit} is below 1 byte/s (RFC 2697 / RFC 2698: CIR > 0)",
                self.cir
            ));
        }
        if cir > MAX_RATE_BYTES {
            return Err(format!("cir: {} {unit} is above 1 Tbit/s", self.cir));
        }
        match self.kind {
            Kind::Srtcm => {
                if self.cbs == 0 && self.ebs == 0 {
                    return Err("cbs: RFC 2697 §2 needs at least one of CBS and EBS above 0".into());
                }
            }
            Kind::Trtcm => {
                if self.pir < self.cir {
                    return Err(format!(
                        "pir: PIR {} must be at least CIR {} (RFC 2698 §2)",
                        self.pir, self.cir
                    ));
                }
                if self.rate_bytes(self.pir) > MAX_RATE_BYTES {
                    return Err(format!("pir: {} {unit} is above 1 Tbit/s", self.pir));
                }
                if self.cbs == 0 {
                    return Err("cbs: RFC 2698 §2 needs CBS above 0".into());
                }
                if self.pbs == 0 {
                    return Err("pbs: RFC 2698 §2 needs PBS above 0".into());
                }
            }
        }
        for (k, v) in [("cbs", self.cbs), ("ebs", self.ebs), ("pbs", self.pbs)] {
            if v > u32::MAX as u64 {
                return Err(format!("{k}: {v} bytes is above 4 GiB"));
            }
        }
        if let Some(ps) = self.per_source {
            let (max, idle, prefix) = (ps.max_sources, ps.idle_s, ps.ipv6_prefix);
            if max == 0 || max > MAX_SOURCES {
                return Err(format!("max_sources: {max} must be 1..={MAX_SOURCES}"));
            }
            if idle == 0 || idle > MAX_IDLE_S {
                return Err(format!("idle_s: {idle} must be 1..={MAX_IDLE_S}"));
            }
            if !(1..=128).contains(&prefix) {
                return Err(format!(
                    "ipv6_prefix: /{prefix} must be 1..=128 (the IPv6 source prefix metered as one source)"
                ));
            }
        }
        Ok(())
    }

    /// The data-path policer (EAL must be up: rte_meter converts rates with the TSC
    /// frequency).
    pub fn to_def(&self, tsc_hz: u64) -> Result<PolicerDef, String> {
        self.check()?;
        let profile = match self.kind {
            Kind::Srtcm => Profile::Srtcm(
                SrtcmProfile::new(SrtcmParams {
                    cir: self.rate_bytes(self.cir),
                    cbs: self.cbs,
                    ebs: self.ebs,
                })
                .map_err(|e| format!("policer '{}': {e}", self.name))?,
            ),
            Kind::Trtcm => Profile::Trtcm(
                TrtcmProfile::new(TrtcmParams {
                    cir: self.rate_bytes(self.cir),
                    pir: self.rate_bytes(self.pir),
                    cbs: self.cbs,
                    pbs: self.pbs,
                })
                .map_err(|e| format!("policer '{}': {e}", self.name))?,
            ),
        };
        Ok(PolicerDef {
            name: self.name.clone(),
            profile,
            color_aware: self.color_aware,
            actions: self.actions,
            class: self.class.as_ref().map(|(_, id)| *id),
            per_source: self.per_source.map(|ps| PerSource {
                max_sources: ps.max_sources,
                idle_ticks: ps.idle_s.saturating_mul(tsc_hz),
                ipv6_prefix: ps.ipv6_prefix,
            }),
        })
    }

    /// The JSON form `policer.list` shows.
    pub fn to_json(&self) -> Value {
        let unit = if self.bits { "bits" } else { "bytes" };
        let mut v = json!({
            "name": self.name,
            "kind": self.kind.name(),
            "units": unit,
            "cir": self.cir,
            "cbs": self.cbs,
            "cir_bytes_per_s": self.rate_bytes(self.cir),
            "color_mode": if self.color_aware { "aware" } else { "blind" },
            "green": self.actions[0].describe(),
            "yellow": self.actions[1].describe(),
            "red": self.actions[2].describe(),
            "bind": match (&self.class, &self.per_source) {
                (Some((c, id)), None) => json!({"class": c, "class_id": id}),
                (Some((c, id)), Some(ps)) => json!({
                    "class": c, "class_id": id, "per_source": true, "max_sources": ps.max_sources,
                    "idle_s": ps.idle_s, "ipv6_prefix": ps.ipv6_prefix,
                }),
                (None, Some(ps)) => json!({
                    "per_source": true, "max_sources": ps.max_sources, "idle_s": ps.idle_s,
                    "ipv6_prefix": ps.ipv6_prefix,
                }),
                (None, None) => json!("default"),
            },
        });
        match self.kind {
            Kind::Srtcm => {
                v["ebs"] = json!(self.ebs);
            }
            Kind::Trtcm => {
                v["pir"] = json!(self.pir);
                v["pbs"] = json!(self.pbs);
                v["pir_bytes_per_s"] = json!(self.rate_bytes(self.pir));
            }
        }
        v
    }
}

/// Named optional keys of a policer entry.
type Keys<'a> = &'a [(&'a str, &'a Option<Spanned<u64>>)];

/// The class id of a class name, from the [classify] section.
fn class_id(c: &Config, name: &str) -> Option<u16> {
    crate::nf::classify::config::class_id(c, name)
}

/// Resolves the [policer] section into specs and the pre-colour table, or the first error with
/// its position.
pub fn specs(c: &Config, err: ErrAt<'_>) -> Result<(Vec<PolicerSpec>, [Color; 64]), ConfigError> {
    let Some(sec) = &c.policer else {
        return Ok((Vec::new(), rfc2597_precolor()));
    };
    let pc = sec.get_ref();
    let mut precolor = rfc2597_precolor();
    if pc.precolor_yellow.is_some() || pc.precolor_red.is_some() {
        precolor = [Color::Green; 64];
        // Unset lists keep their RFC 2597 defaults.
        let def = rfc2597_precolor();
        for (list, color) in [
            (&pc.precolor_yellow, Color::Yellow),
            (&pc.precolor_red, Color::Red),
        ] {
            match list {
                None => {
                    for (d, c) in def.iter().enumerate() {
                        if *c == color {
                            precolor[d] = color;
                        }
                    }
                }
                Some(l) => {
                    for d in l {
                        let v = d.get_ref().value().ok_or_else(|| {
                            err(
                                d.span(),
                                "not a DSCP (0..=63, BE, CS0..CS7, AF11..AF43, EF, VA, LE)".into(),
                            )
                        })?;
                        if precolor[v as usize] != Color::Green && precolor[v as usize] != color {
                            return Err(err(
                                d.span(),
                                format!("DSCP {v} is in both precolor_yellow and precolor_red"),
                            ));
                        }
                        precolor[v as usize] = color;
                    }
                }
            }
        }
    }
    if pc.policers.len() > MAX_POLICERS {
        return Err(err(
            pc.policers[MAX_POLICERS].span(),
            format!("at most {MAX_POLICERS} policers"),
        ));
    }
    let mut out: Vec<PolicerSpec> = Vec::new();
    for e in &pc.policers {
        let p = e.get_ref();
        let name = p.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        {
            return Err(err(
                p.name.span(),
                format!("policer name '{name}': use letters, digits, '_' or '-'"),
            ));
        }
        if out.iter().any(|o| &o.name == name) {
            return Err(err(
                p.name.span(),
                format!("policer '{name}' is defined twice"),
            ));
        }
        let kind = Kind::parse(p.kind.get_ref()).ok_or_else(|| {
            err(
                p.kind.span(),
                format!(
                    "policer '{name}': kind '{}' is not srtcm (RFC 2697) or trtcm (RFC 2698)",
                    p.kind.get_ref()
                ),
            )
        })?;
        let bits = match &p.units {
            None => true,
            Some(u) => units_are_bits(u.get_ref()).ok_or_else(|| {
                err(
                    u.span(),
                    format!(
                        "policer '{name}': units '{}' is not \"bits\" or \"bytes\" (per second)",
                        u.get_ref()
                    ),
                )
            })?,
        };
        // Keys that belong to the other algorithm are refused, not ignored.
        let (foreign, required): (Keys<'_>, Keys<'_>) = match kind {
            Kind::Srtcm => (&[("pir", &p.pir), ("pbs", &p.pbs)], &[("cbs", &p.cbs)]),
            Kind::Trtcm => (
                &[("ebs", &p.ebs)],
                &[("pir", &p.pir), ("cbs", &p.cbs), ("pbs", &p.pbs)],
            ),
        };
        for (k, v) in foreign {
            if let Some(v) = v {
                return Err(err(
                    v.span(),
                    format!(
                        "policer '{name}': `{k}` is not a parameter of {} (RFC {})",
                        kind.name(),
                        if kind == Kind::Srtcm {
                            "2697: cir, cbs, ebs"
                        } else {
                            "2698: cir, pir, cbs, pbs"
                        }
                    ),
                ));
            }
        }
        for (k, v) in required {
            if v.is_none() {
                return Err(err(
                    e.span(),
                    format!("policer '{name}': {} needs `{k}`", kind.name()),
                ));
            }
        }
        let val = |v: &Option<Spanned<u64>>| v.as_ref().map_or(0, |s| *s.get_ref());
        let action = |a: &Option<Spanned<String>>, d: Action| -> Result<Action, ConfigError> {
            match a {
                None => Ok(d),
                Some(s) => parse_action(s.get_ref())
                    .map_err(|m| err(s.span(), format!("policer '{name}': {m}"))),
            }
        };
        let color_aware = match &p.color_mode {
            None => false,
            Some(m) => color_aware(m.get_ref()).ok_or_else(|| {
                err(
                    m.span(),
                    format!(
                        "policer '{name}': color_mode '{}' is not \"blind\" or \"aware\"",
                        m.get_ref()
                    ),
                )
            })?,
        };
        let mut class = None;
        let mut per_source = None;
        if let Some(b) = &p.bind {
            let br = b.get_ref();
            if let Some(cn) = &br.class {
                let id = class_id(c, cn.get_ref()).ok_or_else(|| {
                    err(
                        cn.span(),
                        format!(
                            "policer '{name}': unknown class '{}' (declare it in [classify] classes)",
                            cn.get_ref()
                        ),
                    )
                })?;
                if let Some(o) = out
                    .iter()
                    .find(|o| o.class.as_ref().map(|x| x.1) == Some(id))
                {
                    return Err(err(
                        cn.span(),
                        format!(
                            "policer '{name}': class '{}' already has policer '{}'",
                            cn.get_ref(),
                            o.name
                        ),
                    ));
                }
                class = Some((cn.get_ref().clone(), id));
            }
            if br.per_source {
                per_source = Some(PerSourceSpec {
                    max_sources: br
                        .max_sources
                        .as_ref()
                        .map_or(DEFAULT_MAX_SOURCES, |m| *m.get_ref()),
                    idle_s: br.idle_s.as_ref().map_or(DEFAULT_IDLE_S, |m| *m.get_ref()),
                    ipv6_prefix: br
                        .ipv6_prefix
                        .as_ref()
                        .map_or(DEFAULT_IPV6_PREFIX, |m| *m.get_ref()),
                });
            } else if let Some(s) = br
                .max_sources
                .as_ref()
                .map(|m| m.span())
                .or(br.idle_s.as_ref().map(|m| m.span()))
                .or(br.ipv6_prefix.as_ref().map(|m| m.span()))
            {
                return Err(err(
                    s,
                    format!(
                        "policer '{name}': max_sources, idle_s and ipv6_prefix need per_source = true"
                    ),
                ));
            }
        }
        if class.is_none()
            && let Some(o) = out.iter().find(|o| o.class.is_none())
        {
            let span = p.bind.as_ref().map_or(p.name.span(), |b| b.span());
            return Err(err(
                span,
                format!(
                    "policer '{name}': policer '{}' is already the default (a policer without a class); give one of them `bind = {{ class = ... }}`",
                    o.name
                ),
            ));
        }
        let spec = PolicerSpec {
            name: name.clone(),
            kind,
            bits,
            cir: *p.cir.get_ref(),
            pir: val(&p.pir),
            cbs: val(&p.cbs),
            ebs: val(&p.ebs),
            pbs: val(&p.pbs),
            color_aware,
            actions: [
                action(&p.green, Action::Transmit)?,
                action(&p.yellow, Action::Transmit)?,
                action(&p.red, Action::Drop)?,
            ],
            class,
            per_source,
        };
        if let Err(m) = spec.check() {
            // Point at the key the message names.
            let key = m.split(':').next().unwrap_or("");
            let span = match key {
                "cir" => Some(p.cir.span()),
                "pir" => p.pir.as_ref().map(|s| s.span()),
                "cbs" => p.cbs.as_ref().map(|s| s.span()),
                "ebs" => p.ebs.as_ref().map(|s| s.span()),
                "pbs" => p.pbs.as_ref().map(|s| s.span()),
                "max_sources" => p
                    .bind
                    .as_ref()
                    .and_then(|b| b.get_ref().max_sources.as_ref().map(|s| s.span())),
                "idle_s" => p
                    .bind
                    .as_ref()
                    .and_then(|b| b.get_ref().idle_s.as_ref().map(|s| s.span())),
                "ipv6_prefix" => p
                    .bind
                    .as_ref()
                    .and_then(|b| b.get_ref().ipv6_prefix.as_ref().map(|s| s.span())),
                _ => None,
            }
            .unwrap_or(e.span());
            return Err(err(span, format!("policer '{name}': {m}")));
        }
        out.push(spec);
    }
    Ok((out, precolor))
}

/// Builds the data-path table from resolved specs (EAL must be up).
pub fn table(
    specs: &[PolicerSpec],
    precolor: [Color; 64],
    tsc_hz: u64,
) -> Result<PolicerTable, String> {
    let defs = specs
        .iter()
        .map(|s| s.to_def(tsc_hz))
        .collect::<Result<Vec<_>, _>>()?;
    PolicerTable::new(defs, precolor)
}

pub fn validate(c: &Config, err: ErrAt<'_>) -> Result<(), ConfigError> {
    let uses = c.lcores.iter().find_map(|l| {
        l.get_ref()
            .stages
            .get_ref()
            .iter()
            .find(|s| s.get_ref() == "policer")
    });
    if let Some(s) = uses
        && c.policer.is_none()
    {
        return Err(err(
            s.span(),
            "stage 'policer' needs a [policer] section (with [[policer.policers]])".into(),
        ));
    }
    specs(c, err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=/tmp/in.pcap"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=/tmp/e.pcap"

[[lcore]]
id = 1
rx = [{ port = "p0" }, { port = "p1" }]
stages = ["classify", "policer", "xconnect"]

[xconnect]
pairs = [["p0", "p1"]]

[classify]
classes = ["gold", "silver"]
"#;

    fn parse(policer: &str) -> Result<(Vec<PolicerSpec>, [Color; 64]), ConfigError> {
        let text = format!("{BASE}\n[policer]\n{policer}");
        let (c, _) = crate::registry::parse("t.toml", &text)?;
        specs(&c, &|_, m| ConfigError {
            file: String::new(),
            line: 0,
            col: 0,
            msg: m,
        })
    }

    fn err(policer: &str) -> ConfigError {
        let text = format!("{BASE}\n[policer]\n{policer}");
        crate::registry::parse("t.toml", &text).expect_err("refused")
    }

    #[test]
    fn defaults_and_bindings() {
        let (s, pre) = parse(
            r#"
[[policer.policers]]
name = "g"
kind = "trtcm"
cir = 8000
pir = 16000
cbs = 1500
pbs = 3000
bind = { class = "silver" }

[[policer.policers]]
name = "d"
kind = "srtcm"
units = "bytes"
cir = 1000
cbs = 100
yellow = "remark:af12"
bind = { per_source = true }
"#,
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].class, Some(("silver".into(), 2)));
        assert!(s[0].bits);
        assert_eq!(s[0].rate_bytes(s[0].cir), 1000);
        assert_eq!(s[0].rate_bytes(s[0].pir), 2000);
        assert_eq!(
            s[0].actions,
            [Action::Transmit, Action::Transmit, Action::Drop]
        );
        assert!(!s[0].color_aware);
        assert_eq!(s[1].class, None);
        assert_eq!(
            s[1].per_source,
            Some(PerSourceSpec {
                max_sources: DEFAULT_MAX_SOURCES,
                idle_s: DEFAULT_IDLE_S,
                ipv6_prefix: 64
            })
        );
        assert_eq!(s[1].actions[1], Action::Remark(12));
        assert_eq!(pre, rfc2597_precolor());
        assert_eq!(s[1].to_json()["bind"]["per_source"], true);
        assert_eq!(s[0].to_json()["pir_bytes_per_s"], 2000);
    }

    #[test]
    fn precolor_lists_replace_the_rfc2597_defaults() {
        let (_, pre) = parse("precolor_yellow = [\"EF\", 1]\n").unwrap();
        assert_eq!(pre[46], Color::Yellow);
        assert_eq!(pre[1], Color::Yellow);
        assert_eq!(pre[12], Color::Green, "AF12 no longer yellow");
        assert_eq!(pre[14], Color::Red, "red list keeps its default");
        let e = err("precolor_yellow = [12]\nprecolor_red = [\"AF12\"]\n");
        assert!(e.msg.contains("DSCP 12 is in both"), "{e}");
        let e = err("precolor_red = [64]\n");
        assert!(e.msg.contains("not a DSCP"), "{e}");
    }

    #[test]
    fn rfc_rules_and_positions() {
        let p = |body: &str| format!("[[policer.policers]]\nname = \"x\"\n{body}");
        // [policer] is line 21 of the text, the entry's keys start on line 23 (name).
        let e = err(&p("kind = \"srtcm\"\ncir = 1000\ncbs = 0\nebs = 0\n"));
        assert!(e.msg.contains("RFC 2697"), "{e}");
        assert_eq!((e.line, e.col), (26, 7), "{e}");
        let e = err(&p(
            "kind = \"trtcm\"\ncir = 1000\npir = 999\ncbs = 1\npbs = 1\n",
        ));
        assert!(e.msg.contains("PIR 999 must be at least CIR 1000"), "{e}");
        assert_eq!((e.line, e.col), (26, 7), "{e}");
        let e = err(&p("kind = \"trtcm\"\ncir = 1000\ncbs = 1\npbs = 1\n"));
        assert!(e.msg.contains("trtcm needs `pir`"), "{e}");
        let e = err(&p(
            "kind = \"trtcm\"\ncir = 1\npir = 1\ncbs = 1\npbs = 1\nebs = 5\n",
        ));
        assert!(e.msg.contains("`ebs` is not a parameter of trtcm"), "{e}");
        let e = err(&p(
            "kind = \"srtcm\"\ncir = 1000\ncbs = 1\nbind = { max_sources = 5 }\n",
        ));
        assert!(e.msg.contains("need per_source = true"), "{e}");
        let e = err(&p(
            "kind = \"srtcm\"\ncir = 1000\ncbs = 1\nbind = { ipv6_prefix = 48 }\n",
        ));
        assert!(e.msg.contains("need per_source = true"), "{e}");
        assert_eq!((e.line, e.col), (27, 24), "{e}");
        // ipv6_prefix: 1..=128, pointed at; a value beyond u8 is refused by the parser there.
        for (v, col) in [("0", 43), ("129", 43), ("300", 43)] {
            let e = err(&p(&format!(
                "kind = \"srtcm\"\ncir = 1000\ncbs = 1\nbind = {{ per_source = true, ipv6_prefix = {v} }}\n"
            )));
            if v != "300" {
                assert!(
                    e.msg
                        .contains(&format!("ipv6_prefix: /{v} must be 1..=128")),
                    "{e}"
                );
            }
            assert_eq!((e.line, e.col), (27, col), "{v}: {e}");
        }
        let (s, _) = parse(&p(
            "kind = \"srtcm\"\ncir = 1000\ncbs = 1\nbind = { per_source = true, ipv6_prefix = 48 }\n",
        ))
        .unwrap();
        assert_eq!(s[0].per_source.unwrap().ipv6_prefix, 48);
        assert_eq!(s[0].to_json()["bind"]["ipv6_prefix"], 48);
        let e = err(&p(
            "kind = \"srtcm\"\ncir = 1000\ncbs = 1\nbind = { per_source = true, max_sources = 0 }\n",
        ));
        assert!(e.msg.contains("max_sources: 0"), "{e}");
        let e = err(&p(
            "kind = \"srtcm\"\ncir = 1000\ncbs = 1\ncolor_mode = \"sepia\"\n",
        ));
        assert!(e.msg.contains("color_mode 'sepia'"), "{e}");
        let e = err(&p("kind = \"srtcm\"\ncir = -5\ncbs = 1\n"));
        assert_eq!(e.line, 25, "{e}");
        let two = format!(
            "{}{}",
            p("kind = \"srtcm\"\ncir = 1000\ncbs = 1\n"),
            p("kind = \"srtcm\"\ncir = 1000\ncbs = 1\n").replace("\"x\"", "\"y\"")
        );
        let e = err(&two);
        assert!(e.msg.contains("already the default"), "{e}");
        let dup = format!(
            "{}{}",
            p("kind = \"srtcm\"\ncir = 1000\ncbs = 1\nbind = { class = \"gold\" }\n"),
            p("kind = \"srtcm\"\ncir = 1000\ncbs = 1\n")
        );
        let e = err(&dup);
        assert!(e.msg.contains("defined twice"), "{e}");
    }

    #[test]
    fn actions_parse() {
        assert_eq!(parse_action("transmit"), Ok(Action::Transmit));
        assert_eq!(parse_action("drop"), Ok(Action::Drop));
        assert_eq!(parse_action("remark:EF"), Ok(Action::Remark(46)));
        assert_eq!(parse_action("remark 10"), Ok(Action::Remark(10)));
        assert!(parse_action("remark:").is_err());
        assert!(parse_action("mark:EF").is_err());
    }
}
