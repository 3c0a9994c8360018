//! DPDK's packet classifier (`rte_acl`) for IPv4 and IPv6 rules over the 5-tuple plus the
//! ingress port: one context type per family, [`Acl`] ([`Ipv4Rule`], [`Ipv4Key`]) and [`Acl6`]
//! ([`Ipv6Rule`], [`Ipv6Key`]), both [`AclCtx`] with the family's layout.
//!
//! A rule set is compiled once into an [`Acl`] ([`Acl::build`]: `rte_acl_create`,
//! `rte_acl_add_rules`, `rte_acl_build`), off the data path. A built context is read-only:
//! [`Acl::classify`] may run on any number of lcores at once (`rte_acl_classify` only reads the
//! compiled tries), so an `Acl` is `Send + Sync` and is shared behind an `Arc`; it is freed when
//! the last owner drops it.
//!
//! # Key layout
//!
//! `rte_acl` reads the first field as one byte, then whole groups of 4 consecutive bytes
//! (`input_index`), and expects the packet values in network byte order. [`Ipv4Key`] is laid out
//! for that: protocol (1 byte, then 3 pad bytes), source address, destination address, source
//! and destination port (one 4-byte group), ingress port (a 4-byte group of its own).
//! [`Ipv6Key`] is the same with 128-bit addresses, each as four 4-byte groups (the layout of
//! DPDK's l3fwd and ipsec-secgw examples): next header, source (4 x 32 bits), destination
//! (4 x 32 bits), ports, ingress port; a prefix is split over the four groups (a /48 is /32 of
//! the first group, /16 of the second, and any value in the other two).
//!
//! # Priorities and results
//!
//! When several rules match, the one with the highest `priority` wins; the result of a key is the
//! winning rule's `userdata` (never 0), or 0 when no rule matches. Give rules distinct priorities:
//! between equal priorities `rte_acl` picks one of them.
//!
//! # Classify method
//!
//! `rte_acl` has one classify function per instruction set ([`Alg`]). [`Acl::build`] sets the
//! context to the first of [`Alg::PREFERENCE`] that DPDK accepts for it
//! (`rte_acl_set_ctx_classify` refuses a method the CPU lacks, the library was built without,
//! or EAL's maximum SIMD width excludes), down to the scalar one; [`Acl::alg`] says which.

use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::ffi;
use crate::mbuf::BURST_MAX;

/// Highest priority `rte_acl` accepts (`RTE_ACL_MAX_PRIORITY`); the lowest is 1.
pub const MAX_PRIORITY: u32 = ffi::RTE_ACL_MAX_PRIORITY;
/// Most rules one context may hold (far below `RTE_ACL_MAX_INDEX`; memory is the real limit).
pub const MAX_RULES: usize = 1 << 20;

/// The classification key of one packet. Build it with [`Ipv4Key::new`] (host-order values in,
/// network order stored, as `rte_acl` expects).
#[repr(C, align(4))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ipv4Key {
    proto: u8,
    _pad: [u8; 3],
    src: [u8; 4],
    dst: [u8; 4],
    sport: [u8; 2],
    dport: [u8; 2],
    in_port: [u8; 4],
}

/// Byte offsets of the key fields, the `rte_acl_field_def` offsets.
mod field {
    pub const PROTO: u32 = 0;
    pub const SRC: u32 = 4;
    pub const DST: u32 = 8;
    pub const SPORT: u32 = 12;
    pub const DPORT: u32 = 14;
    pub const IN_PORT: u32 = 16;
    /// Number of fields of a rule.
    pub const COUNT: usize = 6;
}

/// Byte offsets of the IPv6 key's fields: next header, the four 32-bit groups of each
/// address, the ports, the ingress port.
mod field6 {
    pub const PROTO: u32 = 0;
    pub const SRC: u32 = 4;
    pub const DST: u32 = 20;
    pub const SPORT: u32 = 36;
    pub const DPORT: u32 = 38;
    pub const IN_PORT: u32 = 40;
    /// Number of fields of a rule: next header, 4 + 4 address groups, 2 ports, ingress port.
    pub const COUNT: usize = 12;
}

const _: () = assert!(std::mem::size_of::<Ipv4Key>() == field::IN_PORT as usize + 4);
const _: () = assert!(std::mem::size_of::<Ipv6Key>() == field6::IN_PORT as usize + 4);
const _: () = assert!(std::mem::offset_of!(Ipv6Key, src) == field6::SRC as usize);
const _: () = assert!(std::mem::offset_of!(Ipv6Key, dst) == field6::DST as usize);
const _: () = assert!(std::mem::offset_of!(Ipv6Key, sport) == field6::SPORT as usize);
const _: () = assert!(std::mem::offset_of!(Ipv6Key, dport) == field6::DPORT as usize);
const _: () = assert!(std::mem::offset_of!(Ipv6Key, in_port) == field6::IN_PORT as usize);
const _: () = assert!(std::mem::offset_of!(Ipv4Key, src) == field::SRC as usize);
const _: () = assert!(std::mem::offset_of!(Ipv4Key, dst) == field::DST as usize);
const _: () = assert!(std::mem::offset_of!(Ipv4Key, sport) == field::SPORT as usize);
const _: () = assert!(std::mem::offset_of!(Ipv4Key, dport) == field::DPORT as usize);
const _: () = assert!(std::mem::offset_of!(Ipv4Key, in_port) == field::IN_PORT as usize);

impl Ipv4Key {
    /// A key from host-order values: IP protocol, addresses, L4 ports, ingress port id.
    #[inline]
    pub fn new(proto: u8, src: u32, dst: u32, sport: u16, dport: u16, in_port: u16) -> Ipv4Key {
        Ipv4Key {
            proto,
            _pad: [0; 3],
            src: src.to_be_bytes(),
            dst: dst.to_be_bytes(),
            sport: sport.to_be_bytes(),
            dport: dport.to_be_bytes(),
            in_port: u32::from(in_port).to_be_bytes(),
        }
    }

    /// The protocol, addresses, ports and ingress port, host order (inverse of `new`).
    pub fn fields(&self) -> (u8, u32, u32, u16, u16, u16) {
        (
            self.proto,
            u32::from_be_bytes(self.src),
            u32::from_be_bytes(self.dst),
            u16::from_be_bytes(self.sport),
            u16::from_be_bytes(self.dport),
            u32::from_be_bytes(self.in_port) as u16,
        )
    }
}

/// One rule, host-order values. Wildcards: `proto: None`, prefix length 0, port range
/// `(0, 65535)`, `in_port: None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Rule {
    pub proto: Option<u8>,
    /// Source prefix: address and length (0..=32).
    pub src: (u32, u8),
    /// Destination prefix: address and length (0..=32).
    pub dst: (u32, u8),
    /// Inclusive source port range.
    pub sport: (u16, u16),
    /// Inclusive destination port range.
    pub dport: (u16, u16),
    /// Ingress port id.
    pub in_port: Option<u16>,
    /// 1..=[`MAX_PRIORITY`]; the highest matching priority wins.
    pub priority: u32,
    /// Returned by [`Acl::classify`] for keys this rule wins; must not be 0.
    pub userdata: u32,
}

impl Default for Ipv4Rule {
    /// Matches every key; priority 1, userdata 1.
    fn default() -> Self {
        Ipv4Rule {
            proto: None,
            src: (0, 0),
            dst: (0, 0),
            sport: (0, u16::MAX),
            dport: (0, u16::MAX),
            in_port: None,
            priority: 1,
            userdata: 1,
        }
    }
}

impl Ipv4Rule {
    /// Whether the rule matches a key (the reference semantics `rte_acl` implements; used to
    /// check it, and by tests).
    pub fn matches(&self, k: &Ipv4Key) -> bool {
        let (proto, src, dst, sport, dport, in_port) = k.fields();
        let pfx = |(a, l): (u32, u8), v: u32| {
            let m = if l == 0 {
                0
            } else {
                u32::MAX << (32 - l.min(32))
            };
            (a & m) == (v & m)
        };
        self.proto.is_none_or(|p| p == proto)
            && pfx(self.src, src)
            && pfx(self.dst, dst)
            && (self.sport.0..=self.sport.1).contains(&sport)
            && (self.dport.0..=self.dport.1).contains(&dport)
            && self.in_port.is_none_or(|p| p == in_port)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.src.1 > 32 || self.dst.1 > 32 {
            return Err("prefix length above 32".into());
        }
        check_common(self.sport, self.dport, self.priority, self.userdata)
    }

    fn raw(&self) -> RawRule {
        let mut r = RawRule {
            data: ffi::rte_acl_rule_data {
                category_mask: 1,
                priority: self.priority as i32,
                userdata: self.userdata,
            },
            field: [ffi::rte_acl_field::default(); field::COUNT],
        };
        let f = &mut r.field;
        // Field values are written through the union member of the field's size; the unions
        // start zeroed (Default), so the wider members read back consistent values.
        let (pv, pm) = match self.proto {
            Some(p) => (p, u8::MAX),
            None => (0, 0),
        };
        f[0].value.u8_ = pv;
        f[0].mask_range.u8_ = pm;
        f[1].value.u32_ = self.src.0;
        f[1].mask_range.u32_ = u32::from(self.src.1);
        f[2].value.u32_ = self.dst.0;
        f[2].mask_range.u32_ = u32::from(self.dst.1);
        f[3].value.u16_ = self.sport.0;
        f[3].mask_range.u16_ = self.sport.1;
        f[4].value.u16_ = self.dport.0;
        f[4].mask_range.u16_ = self.dport.1;
        let (lo, hi) = match self.in_port {
            Some(p) => (u32::from(p), u32::from(p)),
            None => (0, u32::MAX),
        };
        f[5].value.u32_ = lo;
        f[5].mask_range.u32_ = hi;
        r
    }
}

/// `RTE_ACL_RULE_DEF(, 6)`: the rule header followed by one `rte_acl_field` per field.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RawRule {
    data: ffi::rte_acl_rule_data,
    field: [ffi::rte_acl_field; field::COUNT],
}

fn field_defs() -> [ffi::rte_acl_field_def; field::COUNT] {
    let d = def;
    [
        // The first field must be one byte: the search consumes it on its own.
        d(ffi::RTE_ACL_FIELD_TYPE_BITMASK, 1, 0, 0, field::PROTO),
        d(ffi::RTE_ACL_FIELD_TYPE_MASK, 4, 1, 1, field::SRC),
        d(ffi::RTE_ACL_FIELD_TYPE_MASK, 4, 2, 2, field::DST),
        // Both ports share one 4-byte input group.
        d(ffi::RTE_ACL_FIELD_TYPE_RANGE, 2, 3, 3, field::SPORT),
        d(ffi::RTE_ACL_FIELD_TYPE_RANGE, 2, 4, 3, field::DPORT),
        d(ffi::RTE_ACL_FIELD_TYPE_RANGE, 4, 5, 4, field::IN_PORT),
    ]
}

/// The classification key of one IPv6 packet. Build it with [`Ipv6Key::new`] (host-order values
/// in, network order stored, as `rte_acl` expects).
#[repr(C, align(4))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ipv6Key {
    proto: u8,
    _pad: [u8; 3],
    src: [u8; 16],
    dst: [u8; 16],
    sport: [u8; 2],
    dport: [u8; 2],
    in_port: [u8; 4],
}

impl Ipv6Key {
    /// A key from host-order values: upper-layer protocol (next header), addresses, L4
    /// ports, ingress port id.
    #[inline]
    pub fn new(proto: u8, src: u128, dst: u128, sport: u16, dport: u16, in_port: u16) -> Ipv6Key {
        Ipv6Key {
            proto,
            _pad: [0; 3],
            src: src.to_be_bytes(),
            dst: dst.to_be_bytes(),
            sport: sport.to_be_bytes(),
            dport: dport.to_be_bytes(),
            in_port: u32::from(in_port).to_be_bytes(),
        }
    }

    /// The protocol, addresses, ports and ingress port, host order (inverse of `new`).
    pub fn fields(&self) -> (u8, u128, u128, u16, u16, u16) {
        (
            self.proto,
            u128::from_be_bytes(self.src),
            u128::from_be_bytes(self.dst),
            u16::from_be_bytes(self.sport),
            u16::from_be_bytes(self.dport),
            u32::from_be_bytes(self.in_port) as u16,
        )
    }
}

/// One IPv6 rule, host-order values; wildcards as in [`Ipv4Rule`] (prefix length 0 for any
/// address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Rule {
    /// Upper-layer protocol (the next header that ends the extension-header chain).
    pub proto: Option<u8>,
    /// Source prefix: address and length (0..=128).
    pub src: (u128, u8),
    /// Destination prefix: address and length (0..=128).
    pub dst: (u128, u8),
    pub sport: (u16, u16),
    pub dport: (u16, u16),
    pub in_port: Option<u16>,
    /// 1..=[`MAX_PRIORITY`]; the highest matching priority wins.
    pub priority: u32,
    /// Returned by [`AclCtx::classify`] for keys this rule wins; must not be 0.
    pub userdata: u32,
}

impl Default for Ipv6Rule {
    /// Matches every key; priority 1, userdata 1.
    fn default() -> Self {
        Ipv6Rule {
            proto: None,
            src: (0, 0),
            dst: (0, 0),
            sport: (0, u16::MAX),
            dport: (0, u16::MAX),
            in_port: None,
            priority: 1,
            userdata: 1,
        }
    }
}

/// The mask of a prefix length (0..=128) over a 128-bit address.
fn mask128(l: u8) -> u128 {
    if l == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(l.min(128)))
    }
}

impl Ipv6Rule {
    /// Whether the rule matches a key (the reference semantics; for tests).
    pub fn matches(&self, k: &Ipv6Key) -> bool {
        let (proto, src, dst, sport, dport, in_port) = k.fields();
        let pfx = |(a, l): (u128, u8), v: u128| (a & mask128(l)) == (v & mask128(l));
        self.proto.is_none_or(|p| p == proto)
            && pfx(self.src, src)
            && pfx(self.dst, dst)
            && (self.sport.0..=self.sport.1).contains(&sport)
            && (self.dport.0..=self.dport.1).contains(&dport)
            && self.in_port.is_none_or(|p| p == in_port)
    }
}

/// `RTE_ACL_RULE_DEF(, 12)`: the rule header followed by one `rte_acl_field` per field.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RawRule6 {
    data: ffi::rte_acl_rule_data,
    field: [ffi::rte_acl_field; field6::COUNT],
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Ipv4Rule {}
    impl Sealed for super::Ipv6Rule {}
}

/// A family's rule type: its key, its `rte_acl` rule layout and field definitions. Implemented
/// by [`Ipv4Rule`] and [`Ipv6Rule`] only (sealed): the key layout and the field definitions
/// must agree, which the `unsafe` code relies on.
pub trait AclRule: Copy + sealed::Sealed {
    /// What a packet is classified by.
    type Key: Copy;
    /// `RTE_ACL_RULE_DEF(, FIELDS)`.
    #[doc(hidden)]
    type Raw: Copy;
    /// Number of fields.
    #[doc(hidden)]
    const FIELDS: usize;
    /// Context name prefix.
    #[doc(hidden)]
    const NAME: &'static str;
    #[doc(hidden)]
    fn defs(out: &mut [ffi::rte_acl_field_def]);
    #[doc(hidden)]
    fn check(&self) -> std::result::Result<(), String>;
    #[doc(hidden)]
    fn raw(&self) -> Self::Raw;
}

/// Checks shared by both families: ports, priority, userdata.
fn check_common(
    sport: (u16, u16),
    dport: (u16, u16),
    priority: u32,
    userdata: u32,
) -> std::result::Result<(), String> {
    if sport.0 > sport.1 || dport.0 > dport.1 {
        return Err("port range with low > high".into());
    }
    if priority == 0 || priority > MAX_PRIORITY {
        return Err(format!("priority {priority} outside 1..={MAX_PRIORITY}"));
    }
    if userdata == 0 {
        return Err("userdata 0 is reserved for 'no match'".into());
    }
    Ok(())
}

fn def(type_: u32, size: u8, idx: u8, input: u8, offset: u32) -> ffi::rte_acl_field_def {
    ffi::rte_acl_field_def {
        type_: type_ as u8,
        size,
        field_index: idx,
        input_index: input,
        offset,
    }
}

impl AclRule for Ipv4Rule {
    type Key = Ipv4Key;
    type Raw = RawRule;
    const FIELDS: usize = field::COUNT;
    const NAME: &'static str = "pf_acl";

    fn defs(out: &mut [ffi::rte_acl_field_def]) {
        out[..field::COUNT].copy_from_slice(&field_defs());
    }

    fn check(&self) -> std::result::Result<(), String> {
        Ipv4Rule::check(self)
    }

    fn raw(&self) -> RawRule {
        Ipv4Rule::raw(self)
    }
}

impl AclRule for Ipv6Rule {
    type Key = Ipv6Key;
    type Raw = RawRule6;
    const FIELDS: usize = field6::COUNT;
    const NAME: &'static str = "pf_acl6";

    fn defs(out: &mut [ffi::rte_acl_field_def]) {
        use ffi::{
            RTE_ACL_FIELD_TYPE_BITMASK as BITMASK, RTE_ACL_FIELD_TYPE_MASK as MASK,
            RTE_ACL_FIELD_TYPE_RANGE as RANGE,
        };
        // The first field must be one byte: the search consumes it on its own.
        out[0] = def(BITMASK, 1, 0, 0, field6::PROTO);
        for j in 0..4u8 {
            let o = 4 * u32::from(j);
            out[1 + j as usize] = def(MASK, 4, 1 + j, 1 + j, field6::SRC + o);
            out[5 + j as usize] = def(MASK, 4, 5 + j, 5 + j, field6::DST + o);
        }
        // Both ports share one 4-byte input group.
        out[9] = def(RANGE, 2, 9, 9, field6::SPORT);
        out[10] = def(RANGE, 2, 10, 9, field6::DPORT);
        out[11] = def(RANGE, 4, 11, 10, field6::IN_PORT);
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.src.1 > 128 || self.dst.1 > 128 {
            return Err("prefix length above 128".into());
        }
        check_common(self.sport, self.dport, self.priority, self.userdata)
    }

    fn raw(&self) -> RawRule6 {
        let mut r = RawRule6 {
            data: ffi::rte_acl_rule_data {
                category_mask: 1,
                priority: self.priority as i32,
                userdata: self.userdata,
            },
            field: [ffi::rte_acl_field::default(); field6::COUNT],
        };
        let f = &mut r.field;
        let (pv, pm) = match self.proto {
            Some(p) => (p, u8::MAX),
            None => (0, 0),
        };
        f[0].value.u8_ = pv;
        f[0].mask_range.u8_ = pm;
        // A prefix over four 32-bit groups: group j gets the bits 32j..32j+32 of the address
        // and what of the prefix length falls in them (0..=32).
        for (base, (a, l)) in [(1usize, self.src), (5, self.dst)] {
            let a = a & mask128(l);
            for j in 0..4 {
                let len = u32::from(l).saturating_sub(32 * j as u32).min(32);
                f[base + j].value.u32_ = (a >> (96 - 32 * j)) as u32;
                f[base + j].mask_range.u32_ = len;
            }
        }
        f[9].value.u16_ = self.sport.0;
        f[9].mask_range.u16_ = self.sport.1;
        f[10].value.u16_ = self.dport.0;
        f[10].mask_range.u16_ = self.dport.1;
        let (lo, hi) = match self.in_port {
            Some(p) => (u32::from(p), u32::from(p)),
            None => (0, u32::MAX),
        };
        f[11].value.u32_ = lo;
        f[11].mask_range.u32_ = hi;
        r
    }
}

/// An `rte_acl` classify method (`enum rte_acl_classify_alg`, x86 ones and the portable one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// AVX-512, 32 keys in flight (needs EAL's maximum SIMD width at 512 bits:
    /// `--force-max-simd-bitwidth=512`).
    Avx512x32,
    /// AVX-512 on 256-bit registers, 16 keys in flight.
    Avx512x16,
    /// AVX2, 16 keys in flight (two sets of 8).
    Avx2,
    /// SSE4.1, 8 keys in flight.
    Sse,
    /// Portable C, one key at a time.
    Scalar,
}

impl Alg {
    /// The order [`Acl::build`] tries them in: DPDK's own (widest first). Not always fastest:
    /// on a Xeon with AVX-512, for bursts of 32 keys, SSE measured faster than AVX2
    /// (docs/performance.md), which only matters on a CPU without AVX-512.
    pub const PREFERENCE: [Alg; 5] = [
        Alg::Avx512x32,
        Alg::Avx512x16,
        Alg::Avx2,
        Alg::Sse,
        Alg::Scalar,
    ];

    /// Short name (`avx512x16`, `avx2`, `sse`, `scalar`, ...), as shown to operators.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Avx512x32 => "avx512x32",
            Alg::Avx512x16 => "avx512x16",
            Alg::Avx2 => "avx2",
            Alg::Sse => "sse",
            Alg::Scalar => "scalar",
        }
    }

    /// The method named `name` ([`Alg::name`]), if any.
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::PREFERENCE.into_iter().find(|a| a.name() == name)
    }

    fn raw(self) -> ffi::rte_acl_classify_alg {
        match self {
            Alg::Avx512x32 => ffi::RTE_ACL_CLASSIFY_AVX512X32,
            Alg::Avx512x16 => ffi::RTE_ACL_CLASSIFY_AVX512X16,
            Alg::Avx2 => ffi::RTE_ACL_CLASSIFY_AVX2,
            Alg::Sse => ffi::RTE_ACL_CLASSIFY_SSE,
            Alg::Scalar => ffi::RTE_ACL_CLASSIFY_SCALAR,
        }
    }
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// EAL's maximum SIMD width in bits (`rte_vect_get_max_simd_bitwidth`: 256 by default on x86,
/// `--force-max-simd-bitwidth` changes it), which bounds the classify methods DPDK accepts.
pub fn max_simd_bitwidth() -> u16 {
    // SAFETY: reads one field of EAL's internal configuration; no argument, no side effect.
    unsafe { ffi::rte_vect_get_max_simd_bitwidth() }
}

static NEXT_NAME: AtomicU64 = AtomicU64::new(0);

/// A compiled, read-only rule set of one family (`R`: [`Ipv4Rule`] or [`Ipv6Rule`]). An empty
/// rule set has no DPDK context (every key gets 0).
pub struct AclCtx<R: AclRule> {
    ctx: Option<NonNull<ffi::rte_acl_ctx>>,
    rules: usize,
    name: String,
    /// The classify method set on `ctx` (None without a context).
    alg: Option<Alg>,
    _rule: PhantomData<fn() -> R>,
}

/// An IPv4 rule set.
pub type Acl = AclCtx<Ipv4Rule>;
/// An IPv6 rule set.
pub type Acl6 = AclCtx<Ipv6Rule>;

impl<R: AclRule> std::fmt::Debug for AclCtx<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AclCtx")
            .field("ctx", &self.ctx)
            .field("rules", &self.rules)
            .field("name", &self.name)
            .field("alg", &self.alg)
            .finish()
    }
}

// SAFETY: after `build` the context is never modified; rte_acl_classify only reads it and is
// documented as safe to call from several threads on one context. rte_acl_free (in Drop) runs
// once, when the last owner lets go, and takes DPDK's tailq lock itself.
unsafe impl<R: AclRule> Send for AclCtx<R> {}
// SAFETY: see Send: the only `&self` operation, classify, is read-only on the context.
unsafe impl<R: AclRule> Sync for AclCtx<R> {}

impl<R: AclRule> AclCtx<R> {
    /// Compiles `rules` on NUMA node `socket` (-1: any). Needs EAL. Fails on an invalid rule
    /// (prefix length, range, priority, userdata 0), too many rules, or DPDK running out of
    /// memory.
    pub fn build(rules: &[R], socket: i32) -> Result<AclCtx<R>> {
        let n = NEXT_NAME.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}_{}_{n}", R::NAME, std::process::id() % 100_000);
        if rules.len() > MAX_RULES {
            return Err(Error::invalid(format!(
                "acl {name}: {} rules, at most {MAX_RULES}",
                rules.len()
            )));
        }
        for (i, r) in rules.iter().enumerate() {
            r.check()
                .map_err(|e| Error::invalid(format!("acl {name}: rule {i}: {e}")))?;
        }
        if rules.is_empty() {
            return Ok(AclCtx {
                ctx: None,
                rules: 0,
                name,
                alg: None,
                _rule: PhantomData,
            });
        }
        if !crate::eal::is_initialized() {
            return Err(Error::invalid(format!(
                "acl {name}: EAL is not initialised"
            )));
        }
        let cname = CString::new(name.clone()).expect("no NUL in the name");
        let param = ffi::rte_acl_param {
            name: cname.as_ptr(),
            socket_id: socket,
            rule_size: std::mem::size_of::<R::Raw>() as u32,
            max_rule_num: rules.len() as u32,
        };
        // SAFETY: param points to a valid rte_acl_param whose name is a NUL-terminated string
        // alive for the call (DPDK copies it); EAL is up (checked above).
        let ctx = unsafe { ffi::rte_acl_create(&param) };
        let ctx = NonNull::new(ctx)
            .ok_or_else(|| Error::from_errno(format!("rte_acl_create({name})")))?;
        // From here on Drop frees the context on every error path.
        let mut acl = AclCtx {
            ctx: Some(ctx),
            rules: rules.len(),
            name,
            alg: None,
            _rule: PhantomData,
        };
        let raw: Vec<R::Raw> = rules.iter().map(R::raw).collect();
        // SAFETY: ctx is a live context created with rule_size = size_of::<R::Raw>(), which
        // is the layout RTE_ACL_RULE_DEF(.., R::FIELDS) gives (header, then the fields: RawRule
        // and RawRule6 are repr(C) exactly so); `raw` holds raw.len() <= max_rule_num such
        // rules and outlives the call (DPDK copies them).
        let rc = unsafe {
            ffi::rte_acl_add_rules(
                ctx.as_ptr(),
                raw.as_ptr() as *const ffi::rte_acl_rule,
                raw.len() as u32,
            )
        };
        crate::error::check(rc, || format!("rte_acl_add_rules({})", acl.name))?;
        let mut cfg = ffi::rte_acl_config {
            num_categories: 1,
            num_fields: R::FIELDS as u32,
            ..Default::default()
        };
        R::defs(&mut cfg.defs[..R::FIELDS]);
        // SAFETY: ctx is live and holds the rules added above; cfg is a valid config whose
        // field definitions match the rule layout (R::FIELDS fields) and the key layout
        // (R::Key: the const asserts on the offsets).
        let rc = unsafe { ffi::rte_acl_build(ctx.as_ptr(), &cfg) };
        crate::error::check(rc, || {
            format!("rte_acl_build({}, {} rules)", acl.name, acl.rules)
        })?;
        // The scalar method is always there: the loop ends with a method set.
        for alg in Alg::PREFERENCE {
            if acl.set_alg(alg).is_ok() {
                break;
            }
        }
        Ok(acl)
    }

    /// The classify method in use (None for an empty rule set, which has no context).
    pub fn alg(&self) -> Option<Alg> {
        self.alg
    }

    /// Switches the classify method; fails (leaving the current one) when DPDK refuses it:
    /// the CPU lacks the instructions, the library was built without them, or EAL's maximum
    /// SIMD width ([`max_simd_bitwidth`]) is below the method's. An empty rule set accepts
    /// nothing (it has no context).
    pub fn set_alg(&mut self, alg: Alg) -> Result<()> {
        let Some(ctx) = self.ctx else {
            return Err(Error::invalid(format!(
                "acl {}: no rules, no classify method",
                self.name
            )));
        };
        // SAFETY: ctx is a live context we own exclusively (&mut self); DPDK checks that the
        // method exists on this CPU and build before storing it in the context, and returns
        // an error (context unchanged) otherwise.
        let rc = unsafe { ffi::rte_acl_set_ctx_classify(ctx.as_ptr(), alg.raw()) };
        crate::error::check(rc, || {
            format!("rte_acl_set_ctx_classify({}, {alg})", self.name)
        })?;
        self.alg = Some(alg);
        Ok(())
    }

    /// Number of rules compiled in.
    pub fn len(&self) -> usize {
        self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules == 0
    }

    /// The DPDK context name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Classifies `keys`: `results[i]` gets the userdata of the rule that wins key `i`, or 0.
    /// Only `min(keys.len(), results.len())` keys are classified. One `rte_acl_classify` call
    /// per [`BURST_MAX`] keys; no allocation.
    #[inline]
    pub fn classify(&self, keys: &[R::Key], results: &mut [u32]) {
        let n = keys.len().min(results.len());
        let Some(ctx) = self.ctx else {
            results[..n].fill(0);
            return;
        };
        let mut ptrs = [std::ptr::null::<u8>(); BURST_MAX];
        let mut done = 0;
        while done < n {
            let m = (n - done).min(BURST_MAX);
            for (p, k) in ptrs[..m].iter_mut().zip(&keys[done..done + m]) {
                *p = (k as *const R::Key).cast();
            }
            // SAFETY: ctx is a built, live context (never modified after build); ptrs[..m]
            // point to m valid keys of the context's family (R::Key: the type ties key and
            // context together) borrowed for the call, each covering every field
            // offset + size of the config (checked by the const asserts); results[done..]
            // has room for m results of 1 category.
            let rc = unsafe {
                ffi::rte_acl_classify(
                    ctx.as_ptr(),
                    ptrs.as_mut_ptr(),
                    results[done..].as_mut_ptr(),
                    m as u32,
                    1,
                )
            };
            // The only failure is invalid arguments (categories), which cannot happen here.
            debug_assert!(rc == 0, "rte_acl_classify returned {rc}");
            done += m;
        }
    }
}

impl<R: AclRule> Drop for AclCtx<R> {
    fn drop(&mut self) {
        if let Some(ctx) = self.ctx.take() {
            // SAFETY: we own the context; no classify runs on it any more (drop needs the last
            // owner, and classify borrows self).
            unsafe { ffi::rte_acl_free(ctx.as_ptr()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_network_order() {
        let k = Ipv4Key::new(17, 0x0a00_0001, 0xc0a8_0102, 1000, 53, 3);
        // SAFETY: Ipv4Key is repr(C), 20 bytes of plain data without padding bytes left
        // uninitialised (_pad is a field).
        let b: [u8; 20] = unsafe { std::mem::transmute(k) };
        assert_eq!(
            b,
            [
                17, 0, 0, 0, 10, 0, 0, 1, 192, 168, 1, 2, 0x03, 0xe8, 0, 53, 0, 0, 0, 3
            ]
        );
        assert_eq!(k.fields(), (17, 0x0a00_0001, 0xc0a8_0102, 1000, 53, 3));
    }

    #[test]
    fn ipv6_key_is_network_order() {
        let src = 0x2001_0db8_0000_0000_0000_0000_0000_0001u128;
        let dst = 0xfe80_0000_0000_0000_0000_0000_0000_0002u128;
        let k = Ipv6Key::new(17, src, dst, 1000, 53, 3);
        // SAFETY: Ipv6Key is repr(C), 44 bytes of plain data without padding bytes left
        // uninitialised (_pad is a field).
        let b: [u8; 44] = unsafe { std::mem::transmute(k) };
        let mut want = vec![17, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8];
        want.extend_from_slice(&[0; 11]);
        want.extend_from_slice(&[1, 0xfe, 0x80]);
        want.extend_from_slice(&[0; 13]);
        want.extend_from_slice(&[2, 0x03, 0xe8, 0, 53, 0, 0, 0, 3]);
        assert_eq!(b[..], want[..]);
        assert_eq!(k.fields(), (17, src, dst, 1000, 53, 3));
    }

    #[test]
    fn ipv6_prefixes_are_split_over_four_32_bit_groups() {
        let a = 0x2001_0db8_89ab_cdef_0123_4567_fedc_ba98u128;
        let groups = |r: &RawRule6, base: usize| -> Vec<(u32, u32)> {
            (0..4)
                // SAFETY: reading the u32 members written by raw() (the unions start zeroed).
                .map(|j| unsafe {
                    (
                        r.field[base + j].value.u32_,
                        r.field[base + j].mask_range.u32_,
                    )
                })
                .collect()
        };
        for (l, want) in [
            (0u8, [(0, 0), (0, 0), (0, 0), (0, 0)]),
            (48, [(0x2001_0db8, 32), (0x89ab_0000, 16), (0, 0), (0, 0)]),
            (64, [(0x2001_0db8, 32), (0x89ab_cdef, 32), (0, 0), (0, 0)]),
            (
                127,
                [
                    (0x2001_0db8, 32),
                    (0x89ab_cdef, 32),
                    (0x0123_4567, 32),
                    (0xfedc_ba98, 31),
                ],
            ),
        ] {
            let r = Ipv6Rule {
                src: (a, l),
                dst: (a, l),
                ..Default::default()
            }
            .raw();
            assert_eq!(groups(&r, 1), want, "src /{l}");
            assert_eq!(groups(&r, 5), want, "dst /{l}");
        }
    }

    #[test]
    fn reference_matching() {
        let k = Ipv4Key::new(6, 0x0a01_0203, 0xc000_0201, 40000, 443, 1);
        let any = Ipv4Rule::default();
        assert!(any.matches(&k));
        let r = Ipv4Rule {
            proto: Some(6),
            src: (0x0a00_0000, 8),
            dport: (443, 443),
            in_port: Some(1),
            ..any
        };
        assert!(r.matches(&k));
        assert!(
            !Ipv4Rule {
                in_port: Some(0),
                ..r
            }
            .matches(&k)
        );
        assert!(
            !Ipv4Rule {
                proto: Some(17),
                ..r
            }
            .matches(&k)
        );
        assert!(
            !Ipv4Rule {
                src: (0x0b00_0000, 8),
                ..r
            }
            .matches(&k)
        );
        assert!(
            !Ipv4Rule {
                dport: (1, 442),
                ..r
            }
            .matches(&k)
        );
        assert!(
            Ipv4Rule {
                dst: (0xc000_0201, 32),
                ..r
            }
            .matches(&k)
        );
    }

    #[test]
    fn bad_rules_are_refused_before_dpdk() {
        for bad in [
            Ipv4Rule {
                src: (0, 33),
                ..Default::default()
            },
            Ipv4Rule {
                sport: (5, 4),
                ..Default::default()
            },
            Ipv4Rule {
                priority: 0,
                ..Default::default()
            },
            Ipv4Rule {
                priority: MAX_PRIORITY + 1,
                ..Default::default()
            },
            Ipv4Rule {
                userdata: 0,
                ..Default::default()
            },
        ] {
            assert!(Acl::build(&[bad], -1).is_err(), "{bad:?}");
        }
        // An empty set needs no EAL and matches nothing.
        let a = Acl::build(&[], -1).unwrap();
        let mut res = [7u32; 3];
        a.classify(&[Ipv4Key::default(); 3], &mut res);
        assert_eq!(res, [0, 0, 0]);
    }
}
