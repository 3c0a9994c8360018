//! Classic pcap files (the libpcap format, not pcapng): a writer and a reader, pure Rust.
//!
//! The lab uses pcap files as traffic sources and sinks for DPDK's `net_pcap` PMD and for the
//! generator in [`crate::traffic`].
//!
//! Format (one global header, then records):
//!
//! ```text
//! global header, 24 bytes: magic u32 | version_major u16 (2) | version_minor u16 (4)
//!                          | thiszone i32 | sigfigs u32 | snaplen u32 | network (link type) u32
//! record header, 16 bytes: ts_sec u32 | ts_frac u32 | incl_len u32 | orig_len u32
//! record data:             incl_len bytes
//! ```
//!
//! The magic says both the byte order of every header field and the timestamp resolution:
//! `0xa1b2c3d4` is microseconds, `0xa1b23c4d` nanoseconds; read byte-swapped it means the file
//! was written on a host of the other endianness. DPDK's `net_pcap` PMD writes the nanosecond
//! magic. The reader accepts all four; the writer always writes the microsecond magic in
//! little-endian order, so files are byte-identical whatever the host.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Magic of a microsecond-resolution file, as read in the file's own byte order.
pub const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Magic of a nanosecond-resolution file, as read in the file's own byte order.
pub const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// Magic of a pcapng section header block (not supported; recognised for a clear error).
const MAGIC_PCAPNG: u32 = 0x0a0d_0d0a;
/// `LINKTYPE_ETHERNET`: frames start with a 14-byte Ethernet II header, no FCS.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// The snapshot length libpcap uses by default: large enough for any frame we make.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// Size of the global file header.
pub const GLOBAL_HEADER_LEN: usize = 24;
/// Size of each record header.
pub const RECORD_HEADER_LEN: usize = 16;

/// Field offsets of the two headers, named instead of written as bare numbers.
mod field {
    use std::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION_MAJOR: Range<usize> = 4..6;
    pub const VERSION_MINOR: Range<usize> = 6..8;
    pub const THISZONE: Range<usize> = 8..12;
    pub const SIGFIGS: Range<usize> = 12..16;
    pub const SNAPLEN: Range<usize> = 16..20;
    pub const NETWORK: Range<usize> = 20..24;

    pub const TS_SEC: Range<usize> = 0..4;
    pub const TS_FRAC: Range<usize> = 4..8;
    pub const INCL_LEN: Range<usize> = 8..12;
    pub const ORIG_LEN: Range<usize> = 12..16;
}

const NANOS_PER_SEC: u64 = 1_000_000_000;
const NANOS_PER_MICRO: u64 = 1_000;

/// Writes a classic pcap file: microsecond timestamps, little-endian, `LINKTYPE_ETHERNET`.
///
/// Frames longer than the snapshot length are cut to it (the record keeps the original length
/// in `orig_len`, as libpcap does). Call [`PcapWriter::flush`] or [`PcapWriter::into_inner`] at
/// the end to see write errors: a `BufWriter` dropped unflushed swallows them.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
    packets: u64,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates (or truncates) `path` and writes the global header, with [`DEFAULT_SNAPLEN`].
    pub fn create(path: impl AsRef<Path>) -> io::Result<PcapWriter<BufWriter<File>>> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|e| with_path(path, e))?;
        PcapWriter::new(BufWriter::new(file), DEFAULT_SNAPLEN)
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header to `out` and returns a writer for the records.
    ///
    /// A `snaplen` of 0 is taken as [`DEFAULT_SNAPLEN`] (0 would make every record empty).
    pub fn new(mut out: W, snaplen: u32) -> io::Result<Self> {
        let snaplen = if snaplen == 0 {
            DEFAULT_SNAPLEN
        } else {
            snaplen
        };
        let mut header = [0u8; GLOBAL_HEADER_LEN];
        header[field::MAGIC].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
        header[field::VERSION_MAJOR].copy_from_slice(&2u16.to_le_bytes());
        header[field::VERSION_MINOR].copy_from_slice(&4u16.to_le_bytes());
        header[field::THISZONE].copy_from_slice(&0i32.to_le_bytes());
        header[field::SIGFIGS].copy_from_slice(&0u32.to_le_bytes());
        header[field::SNAPLEN].copy_from_slice(&snaplen.to_le_bytes());
        header[field::NETWORK].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter {
            out,
            snaplen,
            packets: 0,
        })
    }

    /// Appends one frame captured at `ts_nanos` nanoseconds since the Unix epoch.
    ///
    /// The timestamp is stored with microsecond resolution (the sub-microsecond part is
    /// dropped). Timestamps past the year 2106 do not fit the 32-bit seconds field and are an
    /// `InvalidInput` error; so is a frame longer than `u32::MAX` bytes.
    pub fn write_packet(&mut self, ts_nanos: u64, frame: &[u8]) -> io::Result<()> {
        let secs = u32::try_from(ts_nanos / NANOS_PER_SEC).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pcap: timestamp {ts_nanos} ns does not fit 32-bit seconds"),
            )
        })?;
        // < 1_000_000, always fits.
        let micros = ((ts_nanos % NANOS_PER_SEC) / NANOS_PER_MICRO) as u32;
        let orig_len = u32::try_from(frame.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pcap: frame of {} bytes is too long", frame.len()),
            )
        })?;
        let incl_len = orig_len.min(self.snaplen);

        let mut header = [0u8; RECORD_HEADER_LEN];
        header[field::TS_SEC].copy_from_slice(&secs.to_le_bytes());
        header[field::TS_FRAC].copy_from_slice(&micros.to_le_bytes());
        header[field::INCL_LEN].copy_from_slice(&incl_len.to_le_bytes());
        header[field::ORIG_LEN].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(&frame[..incl_len as usize])?;
        self.packets += 1;
        Ok(())
    }

    /// Number of records written so far.
    pub fn packets_written(&self) -> u64 {
        self.packets
    }

    /// The snapshot length written in the global header.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Timestamp resolution of a pcap file, given by its magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsResolution {
    /// Magic `0xa1b2c3d4`: the fractional field counts microseconds.
    Micros,
    /// Magic `0xa1b23c4d`: the fractional field counts nanoseconds.
    Nanos,
}

/// Byte order of a pcap file's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    Little,
    Big,
}

/// The global header of a pcap file, as parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapHeader {
    pub byte_order: ByteOrder,
    pub resolution: TsResolution,
    pub version_major: u16,
    pub version_minor: u16,
    pub snaplen: u32,
    /// Link type (`LINKTYPE_*`); [`LINKTYPE_ETHERNET`] for every file the lab uses.
    pub link_type: u32,
}

/// One record of a pcap file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapRecord {
    /// Capture time in nanoseconds since the Unix epoch (microsecond files: a multiple of 1000).
    pub ts_nanos: u64,
    /// Length of the frame on the wire; larger than `data.len()` if the capture cut it.
    pub orig_len: u32,
    /// The captured bytes (`incl_len` of them).
    pub data: Vec<u8>,
}

/// A whole pcap file, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapCapture {
    pub header: PcapHeader,
    pub records: Vec<PcapRecord>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Reads one field of a header whose length was checked by the caller.
fn read_u32(bytes: &[u8], range: std::ops::Range<usize>, order: ByteOrder) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[range]);
    match order {
        ByteOrder::Little => u32::from_le_bytes(b),
        ByteOrder::Big => u32::from_be_bytes(b),
    }
}

fn read_u16(bytes: &[u8], range: std::ops::Range<usize>, order: ByteOrder) -> u16 {
    let mut b = [0u8; 2];
    b.copy_from_slice(&bytes[range]);
    match order {
        ByteOrder::Little => u16::from_le_bytes(b),
        ByteOrder::Big => u16::from_be_bytes(b),
    }
}

/// Parses a whole pcap file held in memory, whatever its link type.
///
/// Errors (all `InvalidData` except truncation, which is `UnexpectedEof`) name the record
/// number and byte offset: a file shorter than the global header, an unknown magic (pcapng
/// gets its own message), a record header or record body cut short by the end of the file.
pub fn parse_pcap(data: &[u8]) -> io::Result<PcapCapture> {
    if data.len() < GLOBAL_HEADER_LEN {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "pcap: file is {} bytes, shorter than the {GLOBAL_HEADER_LEN}-byte global header",
                data.len()
            ),
        ));
    }
    let magic_le = read_u32(data, field::MAGIC, ByteOrder::Little);
    let (byte_order, resolution) = match magic_le {
        MAGIC_MICROS => (ByteOrder::Little, TsResolution::Micros),
        MAGIC_NANOS => (ByteOrder::Little, TsResolution::Nanos),
        m if m.swap_bytes() == MAGIC_MICROS => (ByteOrder::Big, TsResolution::Micros),
        m if m.swap_bytes() == MAGIC_NANOS => (ByteOrder::Big, TsResolution::Nanos),
        MAGIC_PCAPNG => {
            return Err(invalid(
                "pcap: this is a pcapng file; only classic pcap is supported \
                 (convert with: editcap -F pcap IN OUT)"
                    .to_string(),
            ));
        }
        m => {
            return Err(invalid(format!(
                "pcap: bad magic 0x{m:08x} (expected 0xa1b2c3d4 or 0xa1b23c4d in either byte order)"
            )));
        }
    };
    let header = PcapHeader {
        byte_order,
        resolution,
        version_major: read_u16(data, field::VERSION_MAJOR, byte_order),
        version_minor: read_u16(data, field::VERSION_MINOR, byte_order),
        snaplen: read_u32(data, field::SNAPLEN, byte_order),
        link_type: read_u32(data, field::NETWORK, byte_order),
    };
    let frac_scale = match resolution {
        TsResolution::Micros => NANOS_PER_MICRO,
        TsResolution::Nanos => 1,
    };

    let mut records = Vec::new();
    let mut offset = GLOBAL_HEADER_LEN;
    while offset < data.len() {
        let number = records.len() + 1;
        let rest = &data[offset..];
        if rest.len() < RECORD_HEADER_LEN {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "pcap: truncated record {number} at offset {offset}: record header needs \
                     {RECORD_HEADER_LEN} bytes, only {} remain",
                    rest.len()
                ),
            ));
        }
        let secs = read_u32(rest, field::TS_SEC, byte_order);
        let frac = read_u32(rest, field::TS_FRAC, byte_order);
        let incl_len = read_u32(rest, field::INCL_LEN, byte_order) as usize;
        let orig_len = read_u32(rest, field::ORIG_LEN, byte_order);
        let body = &rest[RECORD_HEADER_LEN..];
        if body.len() < incl_len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "pcap: truncated record {number} at offset {offset}: header says {incl_len} \
                     bytes of data, only {} remain",
                    body.len()
                ),
            ));
        }
        records.push(PcapRecord {
            ts_nanos: u64::from(secs) * NANOS_PER_SEC + u64::from(frac) * frac_scale,
            orig_len,
            data: body[..incl_len].to_vec(),
        });
        offset += RECORD_HEADER_LEN + incl_len;
    }
    Ok(PcapCapture { header, records })
}

/// Returns the Ethernet frames of a pcap file held in memory, in file order.
///
/// Accepts both byte orders and both the microsecond and nanosecond magics. A file with only
/// the global header gives an empty `Vec`. Besides the errors of [`parse_pcap`], a link type
/// other than [`LINKTYPE_ETHERNET`] is an `InvalidData` error.
pub fn read_pcap_bytes(data: &[u8]) -> io::Result<Vec<Vec<u8>>> {
    let capture = parse_pcap(data)?;
    if capture.header.link_type != LINKTYPE_ETHERNET {
        return Err(invalid(format!(
            "pcap: link type {} is not Ethernet ({LINKTYPE_ETHERNET})",
            capture.header.link_type
        )));
    }
    Ok(capture.records.into_iter().map(|r| r.data).collect())
}

/// Reads the Ethernet frames of the pcap file at `path` (see [`read_pcap_bytes`]); errors
/// carry the path.
pub fn read_pcap(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let data = std::fs::read(path).map_err(|e| with_path(path, e))?;
    read_pcap_bytes(&data).map_err(|e| with_path(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> Vec<Vec<u8>> {
        vec![
            (0..60u8).collect(),
            vec![0xff; 1514],
            (0..=255u8).cycle().take(9000).collect(),
        ]
    }

    fn write_all(snaplen: u32, frames: &[Vec<u8>]) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new(), snaplen).unwrap();
        for (i, f) in frames.iter().enumerate() {
            w.write_packet(1_700_000_000_123_456_789 + i as u64 * 1_000, f)
                .unwrap();
        }
        assert_eq!(w.packets_written(), frames.len() as u64);
        w.into_inner().unwrap()
    }

    /// Builds a file by hand: `big` selects the byte order, `magic` the resolution.
    fn handmade(big: bool, magic: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let u32b = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u16b = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = Vec::new();
        out.extend_from_slice(&u32b(magic));
        out.extend_from_slice(&u16b(2));
        out.extend_from_slice(&u16b(4));
        out.extend_from_slice(&u32b(0));
        out.extend_from_slice(&u32b(0));
        out.extend_from_slice(&u32b(65535));
        out.extend_from_slice(&u32b(LINKTYPE_ETHERNET));
        for &(sec, frac, data) in records {
            out.extend_from_slice(&u32b(sec));
            out.extend_from_slice(&u32b(frac));
            out.extend_from_slice(&u32b(data.len() as u32));
            out.extend_from_slice(&u32b(data.len() as u32));
            out.extend_from_slice(data);
        }
        out
    }

    #[test]
    fn roundtrip() {
        let frames = frames();
        let bytes = write_all(DEFAULT_SNAPLEN, &frames);
        assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(read_pcap_bytes(&bytes).unwrap(), frames);

        let cap = parse_pcap(&bytes).unwrap();
        assert_eq!(cap.header.resolution, TsResolution::Micros);
        assert_eq!(cap.header.byte_order, ByteOrder::Little);
        assert_eq!((cap.header.version_major, cap.header.version_minor), (2, 4));
        assert_eq!(cap.header.link_type, LINKTYPE_ETHERNET);
        // Microsecond resolution: the trailing 789 ns are dropped.
        assert_eq!(cap.records[0].ts_nanos, 1_700_000_000_123_456_000);
        assert_eq!(cap.records[1].ts_nanos, 1_700_000_000_123_457_000);
    }

    #[test]
    fn roundtrip_through_file() {
        let dir = std::env::temp_dir().join(format!("pollfwd-pcap-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("roundtrip.pcap");
        let frames = frames();
        let mut w = PcapWriter::create(&path).unwrap();
        for f in &frames {
            w.write_packet(0, f).unwrap();
        }
        w.into_inner().unwrap();
        assert_eq!(read_pcap(&path).unwrap(), frames);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_file_error_names_path() {
        let err = read_pcap(Path::new("/nonexistent/dir/x.pcap")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("/nonexistent/dir/x.pcap"), "{err}");
    }

    #[test]
    fn snaplen_cuts_long_frames() {
        let frames = frames();
        let bytes = write_all(128, &frames);
        let cap = parse_pcap(&bytes).unwrap();
        assert_eq!(cap.header.snaplen, 128);
        assert_eq!(cap.records[0].data, frames[0]);
        assert_eq!(cap.records[1].data, frames[1][..128]);
        assert_eq!(cap.records[1].orig_len, 1514);
    }

    #[test]
    fn header_only_is_empty() {
        let bytes = write_all(DEFAULT_SNAPLEN, &[]);
        assert_eq!(bytes.len(), GLOBAL_HEADER_LEN);
        assert!(read_pcap_bytes(&bytes).unwrap().is_empty());
    }

    #[test]
    fn nanosecond_magic_both_orders() {
        let a: &[u8] = &[1, 2, 3];
        let b: &[u8] = &[4, 5, 6, 7];
        for big in [false, true] {
            let bytes = handmade(big, MAGIC_NANOS, &[(10, 999_999_999, a), (11, 5, b)]);
            let cap = parse_pcap(&bytes).unwrap();
            assert_eq!(cap.header.resolution, TsResolution::Nanos);
            let order = if big {
                ByteOrder::Big
            } else {
                ByteOrder::Little
            };
            assert_eq!(cap.header.byte_order, order);
            assert_eq!(cap.header.snaplen, 65535);
            assert_eq!(cap.records[0].ts_nanos, 10_999_999_999);
            assert_eq!(cap.records[1].ts_nanos, 11_000_000_005);
            assert_eq!(
                read_pcap_bytes(&bytes).unwrap(),
                vec![a.to_vec(), b.to_vec()]
            );
        }
    }

    #[test]
    fn microsecond_magic_byte_swapped() {
        let a: &[u8] = &[0xaa; 60];
        let bytes = handmade(true, MAGIC_MICROS, &[(3, 250_000, a)]);
        assert_eq!(&bytes[..4], &[0xa1, 0xb2, 0xc3, 0xd4]);
        let cap = parse_pcap(&bytes).unwrap();
        assert_eq!(cap.header.byte_order, ByteOrder::Big);
        assert_eq!(cap.header.resolution, TsResolution::Micros);
        assert_eq!(cap.records[0].ts_nanos, 3_250_000_000);
        assert_eq!(cap.records[0].data, a);
    }

    #[test]
    fn truncated_record_body() {
        let mut bytes = write_all(DEFAULT_SNAPLEN, &frames());
        bytes.truncate(bytes.len() - 1);
        let err = read_pcap_bytes(&bytes).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let msg = err.to_string();
        assert!(msg.contains("truncated record 3"), "{msg}");
        assert!(
            msg.contains("header says 9000 bytes of data, only 8999 remain"),
            "{msg}"
        );
    }

    #[test]
    fn truncated_record_header() {
        let mut bytes = write_all(DEFAULT_SNAPLEN, &frames()[..1]);
        bytes.extend_from_slice(&[0; 7]);
        let err = read_pcap_bytes(&bytes).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let msg = err.to_string();
        assert!(msg.contains("truncated record 2 at offset 100"), "{msg}");
        assert!(msg.contains("only 7 remain"), "{msg}");
    }

    #[test]
    fn short_and_foreign_files() {
        let err = read_pcap_bytes(&[]).unwrap_err();
        assert!(
            err.to_string()
                .contains("shorter than the 24-byte global header")
        );

        let mut bytes = write_all(DEFAULT_SNAPLEN, &[]);
        bytes[..4].copy_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]);
        assert!(
            read_pcap_bytes(&bytes)
                .unwrap_err()
                .to_string()
                .contains("pcapng")
        );

        bytes[..4].copy_from_slice(&[1, 2, 3, 4]);
        let err = read_pcap_bytes(&bytes).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("bad magic 0x04030201"), "{err}");

        let mut bytes = write_all(DEFAULT_SNAPLEN, &[]);
        bytes[field::NETWORK].copy_from_slice(&101u32.to_le_bytes()); // LINKTYPE_RAW
        assert!(parse_pcap(&bytes).is_ok());
        let err = read_pcap_bytes(&bytes).unwrap_err();
        assert!(
            err.to_string().contains("link type 101 is not Ethernet"),
            "{err}"
        );
    }

    #[test]
    fn timestamp_out_of_range() {
        let mut w = PcapWriter::new(Vec::new(), 0).unwrap();
        assert_eq!(w.snaplen(), DEFAULT_SNAPLEN);
        let err = w.write_packet(u64::MAX, &[0; 60]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(w.packets_written(), 0);
    }
}
