//! ACL classifier: classes, rules, default action (section [classify]).
//!
//! ```toml
//! [classify]
//! default = "permit"                 # or "deny": packets no rule matches
//! classes = ["gold", "silver"]       # class id = index + 1 (0 = no class)
//! rules = [
//!   { src = "10.0.0.0/8", proto = "udp", dport = "1000-2000", action = "deny" },
//!   { dst = "192.0.2.0/24", proto = "tcp", dport = 443, class = "gold", priority = 10 },
//!   { src = "2001:db8::/32", proto = "udp", action = "deny" },   # IPv6 rule
//!   { proto = "tcp", dport = 22, action = "deny" },               # both families
//! ]
//! rules_file = "acl-rules.toml"      # more rules (`rules = [...]`), relative to this file
//! ```
//!
//! The same rule text is accepted by the `acl.add` operation (JSON), through [`RuleText`] and
//! [`RuleText::compile`]: one parser for config and CLI.
//!
//! A rule's family: IPv6 when a prefix is IPv6 (holds ':') or `proto` is `icmpv6`, IPv4 when a
//! prefix is IPv4 or `proto` is `icmp`, both otherwise; a rule mixing the two is refused.

use std::ops::Range;
use std::path::{Path, PathBuf};

use pollfwd_nf::classify::{Action, Family, Match};
use serde::Deserialize;
use toml::Spanned;

use crate::config::addr::{self, PrefixError};
use crate::config::{Config, ConfigError, ErrAt, line_col};

/// Most rules a configuration may hold (inline plus `rules_file`).
pub const MAX_RULES: usize = 100_000;
/// Most classes (class ids are `u16`, 0 = none).
pub const MAX_CLASSES: usize = 1024;
/// Priorities are limited to this magnitude (higher wins).
pub const MAX_PRIORITY: i64 = 1_000_000;

pub use super::section::*;

/// A field of a rule (to point an error at it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Src,
    Dst,
    Proto,
    Sport,
    Dport,
    InPort,
    Priority,
    Action,
    Class,
}

/// A rule compiled against the configuration: what it matches (ingress port as an index into
/// the configured ports), its priority and action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompiledRule {
    pub m: Match,
    /// Index of the ingress port in the config's `[[port]]` list.
    pub in_port: Option<usize>,
    pub priority: i64,
    pub action: Action,
}

impl CompiledRule {
    /// The match with the ingress port as a DPDK port id (`port_ids[config index]`).
    pub fn with_port_ids(&self, port_ids: &[u16]) -> Match {
        Match {
            in_port: self.in_port.and_then(|i| port_ids.get(i).copied()),
            ..self.m
        }
    }
}

/// Protocol names the rules accept.
const PROTOS: &[(&str, u8)] = &[
    ("icmp", 1),
    ("tcp", 6),
    ("udp", 17),
    ("icmpv6", 58),
    ("sctp", 132),
];

/// ICMP's and ICMPv6's protocol numbers: each names its family.
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

/// A source or destination prefix of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    V4(u32, u8),
    V6(u128, u8),
}

/// Parses an IPv4 (`a.b.c.d[/len]`) or IPv6 (`x:y::z[/len]`: holds ':') prefix; host bits
/// must be zero.
fn parse_prefix(s: &str) -> Result<Prefix, String> {
    if s.contains(':') {
        return parse_prefix6(s).map(|(a, l)| Prefix::V6(a, l));
    }
    parse_prefix4(s).map(|(a, l)| Prefix::V4(a, l))
}

/// The mask of an IPv6 prefix length (0..=128).
fn mask6(l: u8) -> u128 {
    if l == 0 { 0 } else { u128::MAX << (128 - l) }
}

fn parse_prefix6(s: &str) -> Result<(u128, u8), String> {
    let (a, l) = s.split_once('/').unwrap_or((s, "128"));
    let l = l
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|l| *l <= 128)
        .ok_or_else(|| format!("'{s}': IPv6 prefix length must be 0..=128"))?;
    let a: std::net::Ipv6Addr = a
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not an IPv6 address or prefix (x:y::z/len)"))?;
    let a = u128::from(a);
    if a & !mask6(l) != 0 {
        return Err(format!(
            "'{s}' has host bits set (did you mean {}/{l}?)",
            std::net::Ipv6Addr::from(a & mask6(l))
        ));
    }
    Ok((a, l))
}

fn parse_prefix4(s: &str) -> Result<(u32, u8), String> {
    let (a, l) = addr::parse_prefix(s).map_err(|e| match e {
        PrefixError::Length => format!("'{s}': prefix length must be 0..=32"),
        PrefixError::Address => format!("'{s}' is not an IPv4 address or prefix (a.b.c.d/len)"),
    })?;
    let mask = addr::mask(l);
    if a & !mask != 0 {
        return Err(format!(
            "'{s}' has host bits set (did you mean {}/{l}?)",
            std::net::Ipv4Addr::from(a & mask)
        ));
    }
    Ok((a, l))
}

fn parse_proto(v: &NumOrStr) -> Result<Option<u8>, String> {
    match v {
        NumOrStr::Num(n) => u8::try_from(*n)
            .map(Some)
            .map_err(|_| format!("protocol number {n} must be 0..=255")),
        NumOrStr::Str(s) if s == "any" => Ok(None),
        NumOrStr::Str(s) => PROTOS
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, p)| Some(*p))
            .or_else(|| s.parse::<u8>().ok().map(Some))
            .ok_or_else(|| {
                format!(
                    "unknown protocol '{s}' (tcp, udp, icmp, icmpv6, sctp, any or a number 0..=255)"
                )
            }),
    }
}

fn parse_range(v: &NumOrStr) -> Result<(u16, u16), String> {
    let one = |s: &str| {
        s.trim()
            .parse::<u16>()
            .map_err(|_| format!("'{s}' is not a port number 0..=65535"))
    };
    match v {
        NumOrStr::Num(n) => u16::try_from(*n)
            .map(|p| (p, p))
            .map_err(|_| format!("port {n} must be 0..=65535")),
        NumOrStr::Str(s) if s == "any" => Ok((0, u16::MAX)),
        NumOrStr::Str(s) => match s.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (one(lo)?, one(hi)?);
                if lo > hi {
                    Err(format!("range '{s}': low end above high end"))
                } else {
                    Ok((lo, hi))
                }
            }
            None => one(s).map(|p| (p, p)),
        },
    }
}

/// A family's name in messages and listings.
pub fn family_text(f: Family) -> &'static str {
    match f {
        Family::Any => "any",
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    }
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::Any => "either family",
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    }
}

/// Renders a port range the way the config writes it.
pub fn range_text((lo, hi): (u16, u16)) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    }
}

impl RuleText {
    /// Compiles the rule: `classes` are the declared class names, `ports` the configured port
    /// names. The error names the offending field.
    pub fn compile(
        &self,
        classes: &[String],
        ports: &[String],
    ) -> Result<CompiledRule, (Field, String)> {
        let mut m = Match::default();
        // The family: from the prefixes, then from an ICMP protocol.
        let mut family: Option<(Family, Field, &str)> = None;
        for (text, f) in [(&self.src, Field::Src), (&self.dst, Field::Dst)] {
            let Some(t) = text else { continue };
            let name = if f == Field::Src { "src" } else { "dst" };
            let p = parse_prefix(t).map_err(|e| (f, format!("{name} {e}")))?;
            let fam = match p {
                Prefix::V4(a, l) => {
                    if f == Field::Src {
                        m.src = (a, l);
                    } else {
                        m.dst = (a, l);
                    }
                    Family::Ipv4
                }
                Prefix::V6(a, l) => {
                    if f == Field::Src {
                        m.src6 = (a, l);
                    } else {
                        m.dst6 = (a, l);
                    }
                    Family::Ipv6
                }
            };
            match family {
                Some((other, _, other_name)) if other != fam => {
                    return Err((
                        f,
                        format!(
                            "{name} '{t}' is {} but {other_name} is {}: a rule matches one \
                             address family (write one rule per family)",
                            family_name(fam),
                            family_name(other)
                        ),
                    ));
                }
                _ => family = Some((fam, f, name)),
            }
        }
        if let Some(p) = &self.proto {
            m.proto = parse_proto(p).map_err(|e| (Field::Proto, e))?;
            let icmp_family = match m.proto {
                Some(ICMP) => Some((Family::Ipv4, "icmp is IPv4's ICMP (IPv6: icmpv6)")),
                Some(ICMPV6) => Some((Family::Ipv6, "icmpv6 is IPv6's ICMP (IPv4: icmp)")),
                _ => None,
            };
            if let Some((fam, what)) = icmp_family {
                match family {
                    Some((other, _, other_name)) if other != fam => {
                        return Err((
                            Field::Proto,
                            format!("proto {what}, but {other_name} is {}", family_name(other)),
                        ));
                    }
                    _ => family = Some((fam, Field::Proto, "proto")),
                }
            }
        }
        m.family = family.map_or(Family::Any, |f| f.0);
        for (v, f) in [(&self.sport, Field::Sport), (&self.dport, Field::Dport)] {
            let Some(v) = v else { continue };
            let range = parse_range(v).map_err(|e| (f, e))?;
            let name = if f == Field::Sport { "sport" } else { "dport" };
            if !matches!(m.proto, Some(1 | 6 | 17 | 58 | 132 | 136)) {
                return Err((
                    f,
                    format!(
                        "{name} needs proto tcp, udp, sctp, icmp or icmpv6 (other protocols have no ports)"
                    ),
                ));
            }
            if f == Field::Sport {
                m.sport = range;
            } else {
                m.dport = range;
            }
        }
        let in_port = match &self.in_port {
            None => None,
            Some(p) => Some(ports.iter().position(|n| n == p).ok_or_else(|| {
                (
                    Field::InPort,
                    format!(
                        "unknown port or interface '{p}' (known: {})",
                        ports.join(", ")
                    ),
                )
            })?),
        };
        let priority = self.priority.unwrap_or(0);
        if priority.abs() > MAX_PRIORITY {
            return Err((
                Field::Priority,
                format!("priority {priority} must be -{MAX_PRIORITY}..={MAX_PRIORITY}"),
            ));
        }
        let deny = match self.action.as_deref() {
            None | Some("permit") => false,
            Some("deny") => true,
            Some(a) => {
                return Err((
                    Field::Action,
                    format!("unknown action '{a}' (permit or deny)"),
                ));
            }
        };
        let class =
            match &self.class {
                None => 0,
                Some(c) => {
                    if deny {
                        return Err((
                            Field::Class,
                            format!("class '{c}' on a deny rule: denied packets have no class"),
                        ));
                    }
                    classes.iter().position(|n| n == c).map(|i| i as u16 + 1).ok_or_else(|| {
                    (
                        Field::Class,
                        if classes.is_empty() {
                            format!("unknown class '{c}': declare it in [classify] classes = [...]")
                        } else {
                            format!("unknown class '{c}' (classes: {})", classes.join(", "))
                        },
                    )
                })?
                }
            };
        Ok(CompiledRule {
            m,
            in_port,
            priority,
            action: Action { deny, class },
        })
    }
}

impl RuleConfig {
    /// The rule's text (positions dropped).
    pub fn text(&self) -> RuleText {
        RuleText {
            src: self.src.as_ref().map(|s| s.get_ref().clone()),
            dst: self.dst.as_ref().map(|s| s.get_ref().clone()),
            proto: self.proto.as_ref().map(|s| s.get_ref().clone()),
            sport: self.sport.as_ref().map(|s| s.get_ref().clone()),
            dport: self.dport.as_ref().map(|s| s.get_ref().clone()),
            in_port: self.in_port.as_ref().map(|s| s.get_ref().clone()),
            priority: self.priority.as_ref().map(|s| *s.get_ref()),
            action: self.action.as_ref().map(|s| s.get_ref().clone()),
            class: self.class.as_ref().map(|s| s.get_ref().clone()),
        }
    }

    /// Where field `f` is written (`fallback` when absent).
    fn span(&self, f: Field, fallback: Range<usize>) -> Range<usize> {
        let s = match f {
            Field::Src => self.src.as_ref().map(Spanned::span),
            Field::Dst => self.dst.as_ref().map(Spanned::span),
            Field::Proto => self.proto.as_ref().map(Spanned::span),
            Field::Sport => self.sport.as_ref().map(Spanned::span),
            Field::Dport => self.dport.as_ref().map(Spanned::span),
            Field::InPort => self.in_port.as_ref().map(Spanned::span),
            Field::Priority => self.priority.as_ref().map(Spanned::span),
            Field::Action => self.action.as_ref().map(Spanned::span),
            Field::Class => self.class.as_ref().map(Spanned::span),
        };
        s.unwrap_or(fallback)
    }
}

/// The `rules_file` format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rules: Vec<RuleConfig>,
}

/// Class names in declaration order (class id = index + 1).
pub fn classes(c: &Config) -> Vec<String> {
    c.classify
        .as_ref()
        .map(|s| {
            s.get_ref()
                .classes
                .iter()
                .map(|n| n.get_ref().clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The class id of a class name: index in `[classify] classes` + 1 (`PktMeta::class`), or None
/// if the class is not declared. The policer binds to classes through this.
pub fn class_id(c: &Config, name: &str) -> Option<u16> {
    c.classify
        .as_ref()?
        .get_ref()
        .classes
        .iter()
        .position(|n| n.get_ref() == name)
        .map(|i| i as u16 + 1)
}

/// Interface names (ports, then VLAN sub-interfaces) by interface index.
pub fn port_names(c: &Config) -> Vec<String> {
    c.ifaces().map(|i| i.name.get_ref().clone()).collect()
}

/// The default action of a validated config.
pub fn default_action(c: &Config) -> Action {
    match c
        .classify
        .as_ref()
        .and_then(|s| s.get_ref().default.as_ref())
    {
        Some(d) if d.get_ref() == "deny" => Action::DENY,
        _ => Action::PERMIT,
    }
}

/// Every rule of a validated config as text, in order: inline rules, then `rules_file`'s.
pub fn rule_texts(c: &Config) -> Vec<RuleText> {
    let Some(s) = &c.classify else {
        return Vec::new();
    };
    let s = s.get_ref();
    let mut v: Vec<RuleText> = s.rules.iter().map(RuleConfig::text).collect();
    if let Some(f) = s.file_rules.get() {
        v.extend(f.iter().cloned());
    }
    v
}

/// The compiled rules of a validated config, in order (see [`rule_texts`]).
pub fn compiled_rules(c: &Config) -> Result<Vec<CompiledRule>, String> {
    let (classes, ports) = (classes(c), port_names(c));
    rule_texts(c)
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.compile(&classes, &ports)
                .map_err(|(_, e)| format!("classify rule {}: {e}", i + 1))
        })
        .collect()
}

fn rules_file_path(config_file: &str, f: &str) -> PathBuf {
    let p = Path::new(f);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    Path::new(config_file)
        .parent()
        .map(|d| d.join(p))
        .unwrap_or_else(|| p.to_path_buf())
}

pub fn validate(c: &Config, err: ErrAt<'_>) -> Result<(), ConfigError> {
    let Some(sec) = &c.classify else {
        // A chain with a classify stage needs the section.
        for l in &c.lcores {
            for s in l.get_ref().stages.get_ref() {
                if s.get_ref() == "classify" {
                    return Err(err(
                        s.span(),
                        "stage 'classify' needs a [classify] section (default, classes, rules)"
                            .into(),
                    ));
                }
            }
        }
        return Ok(());
    };
    let s = sec.get_ref();
    if let Some(d) = &s.default
        && !matches!(d.get_ref().as_str(), "permit" | "deny")
    {
        return Err(err(
            d.span(),
            format!(
                "classify.default '{}' must be \"permit\" or \"deny\"",
                d.get_ref()
            ),
        ));
    }
    if s.classes.len() > MAX_CLASSES {
        return Err(err(
            s.classes[MAX_CLASSES].span(),
            format!("classify.classes: at most {MAX_CLASSES} classes"),
        ));
    }
    for (i, cl) in s.classes.iter().enumerate() {
        let n = cl.get_ref();
        if n.is_empty()
            || !n
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        {
            return Err(err(
                cl.span(),
                format!("class name '{n}': use letters, digits, '_' or '-'"),
            ));
        }
        if s.classes[..i].iter().any(|o| o.get_ref() == n) {
            return Err(err(cl.span(), format!("class '{n}' is declared twice")));
        }
    }
    let (classes, ports) = (classes(c), port_names(c));
    for r in &s.rules {
        r.text()
            .compile(&classes, &ports)
            .map_err(|(f, e)| err(r.span(f, sec.span()), e))?;
    }
    let mut total = s.rules.len();
    if let Some(rf) = &s.rules_file {
        // The config file's name, as errors show it: rules_file is relative to its directory.
        let config_file = err(0..0, String::new()).file;
        let path = rules_file_path(&config_file, rf.get_ref());
        let shown = path.display().to_string();
        let text = crate::config::read_text(&path)
            .map_err(|e| err(rf.span(), format!("classify.rules_file '{shown}': {e}")))?;
        let at = |span: Range<usize>, msg: String| {
            let (line, col) = line_col(&text, span.start);
            ConfigError {
                file: shown.clone(),
                line,
                col,
                msg,
            }
        };
        let parsed: RulesFile = toml::from_str(&text)
            .map_err(|e| at(e.span().unwrap_or(0..0), e.message().trim().to_string()))?;
        let mut texts = Vec::with_capacity(parsed.rules.len());
        for r in &parsed.rules {
            r.text()
                .compile(&classes, &ports)
                .map_err(|(f, e)| at(r.span(f, 0..0), e))?;
            texts.push(r.text());
        }
        total += texts.len();
        // Validation may run more than once on one Config only through clones made after it
        // ran (which carry the rules): a set value is the same file's rules.
        let _ = s.file_rules.set(texts);
    }
    if total > MAX_RULES {
        return Err(err(
            sec.span(),
            format!("classify: {total} rules, at most {MAX_RULES}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::parse;

    const BASE: &str = r#"
[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=/tmp/in.pcap,tx_pcap=/tmp/out0.pcap"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=/tmp/empty.pcap,tx_pcap=/tmp/out1.pcap"

[[lcore]]
id = 1
rx = [{ port = "p0" }, { port = "p1" }]
stages = ["classify", "xconnect"]

[xconnect]
pairs = [["p0", "p1"]]
"#;

    fn cfg(section: &str) -> Result<Config, ConfigError> {
        parse("c.toml", &format!("{BASE}{section}")).map(|(c, _)| c)
    }

    /// Line and column of `needle` in the full config text (1-based).
    fn pos_of(section: &str, needle: &str) -> (usize, usize) {
        let t = format!("{BASE}{section}");
        line_col(&t, t.find(needle).unwrap())
    }

    fn err_at(section: &str, needle: &str, msg: &str) {
        let e = cfg(section).expect_err("must be refused");
        assert_eq!((e.line, e.col), pos_of(section, needle), "{e}");
        assert!(e.msg.contains(msg), "{e}");
        assert!(e.to_string().starts_with("c.toml:"), "{e}");
    }

    #[test]
    fn full_section_parses_and_compiles() {
        let sec = r#"
[classify]
default = "deny"
classes = ["gold", "silver"]
rules = [
  { src = "10.0.0.0/8", proto = "udp", dport = "1000-2000", action = "deny", priority = 5 },
  { dst = "192.0.2.7", proto = "tcp", sport = 443, class = "silver" },
  { proto = 47, in_port = "p1" },
  { proto = "icmp", dport = "2048-2303", class = "gold" },
]
"#;
        let c = cfg(sec).unwrap();
        assert_eq!(class_id(&c, "gold"), Some(1));
        assert_eq!(class_id(&c, "silver"), Some(2));
        assert_eq!(class_id(&c, "bronze"), None);
        assert_eq!(default_action(&c), Action::DENY);
        let r = compiled_rules(&c).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].m.src, (0x0a00_0000, 8));
        assert_eq!(r[0].m.proto, Some(17));
        assert_eq!(r[0].m.dport, (1000, 2000));
        assert_eq!(r[0].m.sport, (0, 65535));
        assert_eq!(r[0].priority, 5);
        assert_eq!(r[0].action, Action::DENY);
        assert_eq!(r[1].m.dst, (0xc000_0207, 32));
        assert_eq!(r[1].m.sport, (443, 443));
        assert_eq!(
            r[1].action,
            Action {
                deny: false,
                class: 2
            }
        );
        assert_eq!(r[2].m.proto, Some(47));
        assert_eq!(r[2].in_port, Some(1));
        assert_eq!(r[2].with_port_ids(&[4, 9]).in_port, Some(9));
        assert_eq!(r[3].action.class, 1);
    }

    #[test]
    fn no_section_means_no_rules_but_the_stage_needs_one() {
        let e = cfg("").expect_err("classify stage without section");
        assert!(e.msg.contains("needs a [classify] section"), "{e}");
        let c = parse("c.toml", &BASE.replace("\"classify\", ", ""))
            .unwrap()
            .0;
        assert_eq!(class_id(&c, "gold"), None);
        assert!(compiled_rules(&c).unwrap().is_empty());
        assert_eq!(default_action(&c), Action::PERMIT);
        let c = cfg("[classify]\n").unwrap();
        assert_eq!(default_action(&c), Action::PERMIT);
    }

    #[test]
    fn errors_point_at_the_bad_value() {
        err_at(
            "[classify]\nrules = [{ src = \"10.0.0.0/33\" }]\n",
            "\"10.0.0.0/33\"",
            "prefix length must be 0..=32",
        );
        err_at(
            "[classify]\nrules = [{ dst = \"10.1.0.0/8\" }]\n",
            "\"10.1.0.0/8\"",
            "host bits set (did you mean 10.0.0.0/8?)",
        );
        err_at(
            "[classify]\nrules = [{ dst = \"10.0.0.300\" }]\n",
            "\"10.0.0.300\"",
            "not an IPv4 address",
        );
        err_at(
            "[classify]\nrules = [{ proto = \"udp\", dport = \"2000-1000\" }]\n",
            "\"2000-1000\"",
            "low end above high end",
        );
        err_at(
            "[classify]\nrules = [{ proto = \"udp\", sport = 70000 }]\n",
            "70000",
            "must be 0..=65535",
        );
        err_at(
            "[classify]\nrules = [{ dport = 53 }]\n",
            "53",
            "dport needs proto",
        );
        err_at(
            "[classify]\nrules = [{ proto = \"gre\" }]\n",
            "\"gre\"",
            "unknown protocol 'gre'",
        );
        err_at(
            "[classify]\nclasses = [\"gold\"]\nrules = [{ class = \"platinum\" }]\n",
            "\"platinum\"",
            "unknown class 'platinum' (classes: gold)",
        );
        err_at(
            "[classify]\nclasses = [\"gold\"]\nrules = [{ action = \"deny\", class = \"gold\" }]\n",
            "\"gold\" }",
            "deny rule",
        );
        err_at(
            "[classify]\nrules = [{ in_port = \"p7\" }]\n",
            "\"p7\"",
            "unknown port or interface 'p7'",
        );
        err_at(
            "[classify]\nrules = [{ action = \"drop\" }]\n",
            "\"drop\"",
            "unknown action 'drop'",
        );
        err_at(
            "[classify]\ndefault = \"maybe\"\n",
            "\"maybe\"",
            "must be \"permit\" or \"deny\"",
        );
        err_at(
            "[classify]\nclasses = [\"a\", \"b\", \"a\"]\n",
            "\"a\"]",
            "declared twice",
        );
        err_at(
            "[classify]\nrules = [{ priority = 2000000 }]\n",
            "2000000",
            "priority 2000000",
        );
        // Unknown keys in a rule: serde's message, positioned.
        let e = cfg("[classify]\nrules = [{ srcip = \"1.2.3.4\" }]\n").unwrap_err();
        assert!(e.msg.contains("unknown field `srcip`"), "{e}");
        assert_eq!(e.line, pos_of("[classify]\nrules = [{ srcip", "rules").0);
    }

    #[test]
    fn ipv6_rules_and_the_family_of_each_rule() {
        let sec = r#"
[classify]
rules = [
  { src = "2001:db8::/32", proto = "udp", dport = 53, action = "deny" },
  { dst = "2001:db8:0:1::7", proto = "icmpv6", dport = "32768-33023" },
  { proto = "tcp", dport = 22, action = "deny" },
  { proto = "icmp" },
  { proto = "icmpv6" },
  { src = "::/0" },
  { dst = "0.0.0.0/0" },
  { src = "10.0.0.0/8", dst = "192.0.2.0/24" },
  { src = "fe80::/10", dst = "2001:db8::/48" },
]
"#;
        let r = compiled_rules(&cfg(sec).unwrap()).unwrap();
        let fam: Vec<Family> = r.iter().map(|r| r.m.family).collect();
        use Family::*;
        assert_eq!(
            fam,
            vec![Ipv6, Ipv6, Any, Ipv4, Ipv6, Ipv6, Ipv4, Ipv4, Ipv6]
        );
        assert_eq!(r[0].m.src6, (0x2001_0db8 << 96, 32));
        assert_eq!(r[0].m.src, (0, 0));
        assert_eq!(r[0].m.dport, (53, 53));
        assert_eq!(r[1].m.dst6, (0x2001_0db8_0000_0001 << 64 | 7, 128));
        assert_eq!(r[1].m.proto, Some(58));
        assert_eq!(r[1].m.dport, (128 * 256, 128 * 256 + 255));
        assert_eq!(r[2].m.dport, (22, 22));
        assert_eq!(r[5].m.src6, (0, 0));
        assert_eq!(r[8].m.src6, (0xfe80 << 112, 10));
        assert_eq!(r[8].m.dst6, (0x2001_0db8 << 96, 48));
    }

    #[test]
    fn a_rule_mixing_families_and_bad_ipv6_prefixes_are_refused_where_written() {
        err_at(
            "[classify]\nrules = [{ src = \"10.0.0.0/8\", dst = \"2001:db8::/32\" }]\n",
            "\"2001:db8::/32\"",
            "dst '2001:db8::/32' is IPv6 but src is IPv4: a rule matches one address family",
        );
        err_at(
            "[classify]\nrules = [{ dst = \"10.0.0.0/8\", src = \"2001:db8::/32\" }]\n",
            "\"10.0.0.0/8\"",
            "dst '10.0.0.0/8' is IPv4 but src is IPv6",
        );
        err_at(
            "[classify]\nrules = [{ dst = \"2001:db8::/32\", proto = \"icmp\" }]\n",
            "\"icmp\"",
            "proto icmp is IPv4's ICMP (IPv6: icmpv6), but dst is IPv6",
        );
        err_at(
            "[classify]\nrules = [{ src = \"192.0.2.0/24\", proto = 58 }]\n",
            "58",
            "proto icmpv6 is IPv6's ICMP (IPv4: icmp), but src is IPv4",
        );
        err_at(
            "[classify]\nrules = [{ src = \"2001:db8::1/32\" }]\n",
            "\"2001:db8::1/32\"",
            "host bits set (did you mean 2001:db8::/32?)",
        );
        err_at(
            "[classify]\nrules = [{ dst = \"2001:db8::/129\" }]\n",
            "\"2001:db8::/129\"",
            "IPv6 prefix length must be 0..=128",
        );
        err_at(
            "[classify]\nrules = [{ dst = \"2001:db8::g/64\" }]\n",
            "\"2001:db8::g/64\"",
            "not an IPv6 address",
        );
        // The same check on a rule added at run time (JSON): the field named.
        let r: RuleText =
            serde_json::from_str(r#"{"src": "10.0.0.0/8", "dst": "2001:db8::/32"}"#).unwrap();
        let (f, e) = r.compile(&[], &[]).unwrap_err();
        assert_eq!(f, Field::Dst);
        assert!(e.contains("one address family"), "{e}");
        let r: RuleText =
            serde_json::from_str(r#"{"dst": "2001:db8::/32", "proto": "udp", "dport": 53}"#)
                .unwrap();
        assert_eq!(r.compile(&[], &[]).unwrap().m.family, Family::Ipv6);
    }

    #[test]
    fn rules_file_is_read_relative_to_the_config_and_positions_its_errors() {
        let dir = std::env::temp_dir().join(format!("pf-acl-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("more.toml"),
            "rules = [\n  { proto = \"tcp\", dport = 22, action = \"deny\" },\n  { src = \"10.0.0.0/16\" },\n]\n",
        )
        .unwrap();
        let text =
            format!("{BASE}[classify]\nrules = [{{ proto = 1 }}]\nrules_file = \"more.toml\"\n");
        let conf = dir.join("pollfwd.toml");
        std::fs::write(&conf, &text).unwrap();
        let c = crate::registry::load(&conf).unwrap().config;
        let r = compiled_rules(&c).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].m.proto, Some(1));
        assert_eq!(r[1].m.dport, (22, 22));
        assert_eq!(r[2].m.src, (0x0a00_0000, 16));
        // A bad rule in the rules file: that file's line and column.
        std::fs::write(
            dir.join("more.toml"),
            "rules = [\n  { proto = \"tcp\", dport = 22 },\n  { src = \"10.0.0.1/16\" },\n]\n",
        )
        .unwrap();
        let e = crate::registry::load(&conf).unwrap_err();
        assert_eq!(e.file, dir.join("more.toml").display().to_string());
        assert_eq!((e.line, e.col), (3, 11), "{e}");
        assert!(e.msg.contains("host bits"), "{e}");
        std::fs::remove_file(dir.join("more.toml")).unwrap();
        let e = crate::registry::load(&conf).unwrap_err();
        assert!(e.msg.contains("cannot read"), "{e}");
        assert_eq!(e.file, conf.display().to_string());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn json_rule_text_uses_the_same_parser() {
        let r: RuleText = serde_json::from_str(
            r#"{"src": "10.0.0.0/8", "proto": "tcp", "dport": "80-90", "priority": 3}"#,
        )
        .unwrap();
        let c = r.compile(&[], &["p0".into()]).unwrap();
        assert_eq!(c.m.dport, (80, 90));
        assert_eq!(c.priority, 3);
        let e = serde_json::from_str::<RuleText>(r#"{"source": "1.2.3.4"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let bad: RuleText = serde_json::from_str(r#"{"proto": 300}"#).unwrap();
        assert_eq!(bad.compile(&[], &[]).unwrap_err().0, Field::Proto);
        // Listing round trip: absent fields stay absent.
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"src":"10.0.0.0/8","proto":"tcp","dport":"80-90","priority":3}"#
        );
    }
}
