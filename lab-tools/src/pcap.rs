//! Classic pcap files (the libpcap format, not pcapng) for the lab, on the `pcap-file` crate.
//!
//! The lab uses pcap files as traffic sources and sinks for DPDK's `net_pcap` PMD and for the
//! generator in [`crate::traffic`]. This module only adds what the lab needs on top of
//! `pcap-file`: timestamps in nanoseconds since the Unix epoch, frames longer than the snapshot
//! length cut to it (as libpcap does), errors as `io::Error` that name the file and the
//! record, and Ethernet frames as plain byte vectors.
//!
//! The writer always writes the microsecond magic (`0xa1b2c3d4`) in little-endian order with
//! a snapshot length of [`DEFAULT_SNAPLEN`], so files are byte-identical whatever the host.
//! The reader accepts both byte orders and both the microsecond and the nanosecond magic
//! (DPDK's `net_pcap` PMD writes the nanosecond one).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapParser};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

/// `LINKTYPE_ETHERNET`: frames start with a 14-byte Ethernet II header, no FCS.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// The snapshot length libpcap uses by default: large enough for any frame we make.
pub const DEFAULT_SNAPLEN: u32 = 262_144;
/// Size of the global file header.
pub const GLOBAL_HEADER_LEN: usize = 24;
/// Magic of a pcapng section header block (not supported; recognised for a clear error).
const MAGIC_PCAPNG: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Writes a classic pcap file: microsecond timestamps, little-endian, `LINKTYPE_ETHERNET`.
///
/// Frames longer than the snapshot length are cut to it (the record keeps the original length
/// in `orig_len`, as libpcap does). Call [`PcapWriter::into_inner`] at the end to see write
/// errors: a `BufWriter` dropped unflushed swallows them.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    inner: pcap_file::pcap::PcapWriter<W>,
    packets: u64,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates (or truncates) `path` and writes the global header, with [`DEFAULT_SNAPLEN`].
    /// Errors name the path.
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
    pub fn new(out: W, snaplen: u32) -> io::Result<Self> {
        let snaplen = if snaplen == 0 {
            DEFAULT_SNAPLEN
        } else {
            snaplen
        };
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::Little,
        };
        let inner = pcap_file::pcap::PcapWriter::with_header(out, header).map_err(to_io)?;
        Ok(PcapWriter { inner, packets: 0 })
    }

    /// Appends one frame captured at `ts_nanos` nanoseconds since the Unix epoch.
    ///
    /// The timestamp is stored with microsecond resolution (the sub-microsecond part is
    /// dropped). Timestamps past the year 2106 do not fit the 32-bit seconds field and are an
    /// `InvalidInput` error; so is a frame longer than `u32::MAX` bytes.
    pub fn write_packet(&mut self, ts_nanos: u64, frame: &[u8]) -> io::Result<()> {
        if u32::try_from(ts_nanos / 1_000_000_000).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pcap: timestamp {ts_nanos} ns does not fit 32-bit seconds"),
            ));
        }
        let orig_len = u32::try_from(frame.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pcap: frame of {} bytes is too long", frame.len()),
            )
        })?;
        let incl_len = orig_len.min(self.inner.snaplen()) as usize;
        let packet = PcapPacket::new(Duration::from_nanos(ts_nanos), orig_len, &frame[..incl_len]);
        self.inner.write_packet(&packet).map_err(to_io)?;
        self.packets += 1;
        Ok(())
    }

    /// Number of records written so far.
    pub fn packets_written(&self) -> u64 {
        self.packets
    }

    /// The snapshot length written in the global header.
    pub fn snaplen(&self) -> u32 {
        self.inner.snaplen()
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(self) -> io::Result<W> {
        let mut out = self.inner.into_writer();
        out.flush()?;
        Ok(out)
    }
}

/// Writes `frames` to a new pcap file at `path`, timestamps 1 µs apart from 0, and returns
/// how many it wrote. Errors name the path.
pub fn write_frames<F: AsRef<[u8]>>(
    path: &Path,
    frames: impl IntoIterator<Item = F>,
) -> io::Result<usize> {
    let mut w = PcapWriter::create(path)?;
    let mut n = 0;
    for f in frames {
        w.write_packet(n as u64 * 1_000, f.as_ref())
            .map_err(|e| with_path(path, e))?;
        n += 1;
    }
    w.into_inner().map_err(|e| with_path(path, e))?;
    Ok(n)
}

/// An `io::Error` of `pcap-file`'s error, with the same kind where there is one.
fn to_io(e: PcapError) -> io::Error {
    match e {
        PcapError::IoError(e) => io::Error::new(e.kind(), format!("pcap: {e}")),
        PcapError::IncompleteBuffer => {
            io::Error::new(io::ErrorKind::UnexpectedEof, "pcap: file is truncated")
        }
        e => io::Error::new(io::ErrorKind::InvalidData, format!("pcap: {e}")),
    }
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Parses the global header; errors say what the file is instead when it is not pcap.
fn parse_header(data: &[u8]) -> io::Result<(&[u8], PcapParser)> {
    if data.len() < GLOBAL_HEADER_LEN {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "pcap: file is {} bytes, shorter than the {GLOBAL_HEADER_LEN}-byte global header",
                data.len()
            ),
        ));
    }
    if data[..4] == MAGIC_PCAPNG {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "pcap: this is a pcapng file; only classic pcap is supported \
             (convert with: editcap -F pcap IN OUT)",
        ));
    }
    PcapParser::new(data).map_err(|e| match e {
        PcapError::InvalidField(_) => io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "pcap: bad magic 0x{:08x} (expected 0xa1b2c3d4 or 0xa1b23c4d in either byte order)",
                u32::from_le_bytes([data[0], data[1], data[2], data[3]])
            ),
        ),
        e => to_io(e),
    })
}

/// Returns the Ethernet frames of a pcap file held in memory, in file order.
///
/// Accepts both byte orders and both the microsecond and nanosecond magics. A file with only
/// the global header gives an empty `Vec`. Errors (`InvalidData`, or `UnexpectedEof` for a
/// truncated file): a file shorter than the global header, an unknown magic (pcapng gets its
/// own message), a record cut short by the end of the file (named by its number and offset),
/// a link type other than [`LINKTYPE_ETHERNET`].
///
/// Records are read raw, so captures cut to a snapshot length (`orig_len` > snaplen, which
/// `pcap-file`'s checked packets refuse) read as the bytes captured.
pub fn read_pcap_bytes(data: &[u8]) -> io::Result<Vec<Vec<u8>>> {
    let (mut rest, parser) = parse_header(data)?;
    let link_type = u32::from(parser.header().datalink);
    if link_type != LINKTYPE_ETHERNET {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("pcap: link type {link_type} is not Ethernet ({LINKTYPE_ETHERNET})"),
        ));
    }
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let offset = data.len() - rest.len();
        let (next, raw) = parser.next_raw_packet(rest).map_err(|e| match e {
            PcapError::IncompleteBuffer => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "pcap: truncated record {} at offset {offset}: {} bytes remain",
                    frames.len() + 1,
                    rest.len()
                ),
            ),
            e => to_io(e),
        })?;
        frames.push(raw.data.into_owned());
        rest = next;
    }
    Ok(frames)
}

/// Reads the Ethernet frames of the pcap file at `path` (see [`read_pcap_bytes`]); errors
/// carry the path.
pub fn read_pcap(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let data = std::fs::read(path).map_err(|e| with_path(path, e))?;
    read_pcap_bytes(&data).map_err(|e| with_path(path, e))
}

/// Number of whole records in a pcap file that may still be being written: 0 if it is not
/// (yet) a pcap file, and a trailing partial record is not counted.
pub fn whole_records(data: &[u8]) -> usize {
    let Ok((mut rest, parser)) = parse_header(data) else {
        return 0;
    };
    let mut n = 0;
    while let Ok((next, _)) = parser.next_raw_packet(rest) {
        rest = next;
        n += 1;
    }
    n
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

    /// The header and the packets as `pcap-file`'s checked reader sees them.
    fn parse(bytes: &[u8]) -> (PcapHeader, Vec<PcapPacket<'_>>) {
        let (mut rest, parser) = PcapParser::new(bytes).unwrap();
        let mut packets = Vec::new();
        while !rest.is_empty() {
            let (next, p) = parser.next_packet(rest).unwrap();
            packets.push(p);
            rest = next;
        }
        (parser.header(), packets)
    }

    #[test]
    fn roundtrip() {
        let frames = frames();
        let bytes = write_all(DEFAULT_SNAPLEN, &frames);
        // The exact global header the hand-written writer wrote: LE microsecond magic,
        // version 2.4, zone 0, sigfigs 0, snaplen 262144, Ethernet.
        assert_eq!(
            bytes[..GLOBAL_HEADER_LEN],
            [
                0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0
            ]
        );
        // The first record header: 1700000000 s, 123456 µs, 60 bytes of 60.
        let mut rec = Vec::new();
        for v in [1_700_000_000u32, 123_456, 60, 60] {
            rec.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(bytes[GLOBAL_HEADER_LEN..GLOBAL_HEADER_LEN + 16], rec);
        assert_eq!(read_pcap_bytes(&bytes).unwrap(), frames);

        let (header, packets) = parse(&bytes);
        assert_eq!(header.ts_resolution, TsResolution::MicroSecond);
        assert_eq!(header.endianness, Endianness::Little);
        assert_eq!((header.version_major, header.version_minor), (2, 4));
        assert_eq!(header.datalink, DataLink::ETHERNET);
        assert_eq!(header.snaplen, DEFAULT_SNAPLEN);
        // Microsecond resolution: the trailing 789 ns are dropped.
        assert_eq!(
            packets[0].timestamp,
            Duration::from_nanos(1_700_000_000_123_456_000)
        );
        assert_eq!(
            packets[1].timestamp,
            Duration::from_nanos(1_700_000_000_123_457_000)
        );
        assert_eq!(whole_records(&bytes), 3);
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

        let path = dir.join("write_frames.pcap");
        assert_eq!(write_frames(&path, &frames).unwrap(), 3);
        assert_eq!(read_pcap(&path).unwrap(), frames);
        let bytes = std::fs::read(&path).unwrap();
        let (_, packets) = parse(&bytes);
        let ts: Vec<Duration> = packets.iter().map(|p| p.timestamp).collect();
        assert_eq!(ts, [0, 1, 2].map(Duration::from_micros));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_file_errors_name_the_path() {
        let err = read_pcap(Path::new("/nonexistent/dir/x.pcap")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("/nonexistent/dir/x.pcap"), "{err}");
        let err = PcapWriter::create("/nonexistent/dir/y.pcap").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("/nonexistent/dir/y.pcap"), "{err}");
    }

    #[test]
    fn snaplen_cuts_long_frames() {
        let frames = frames();
        let bytes = write_all(128, &frames);
        let (mut rest, parser) = PcapParser::new(&bytes).unwrap();
        assert_eq!(parser.header().snaplen, 128);
        let mut raw = Vec::new();
        while !rest.is_empty() {
            let (next, p) = parser.next_raw_packet(rest).unwrap();
            raw.push(p);
            rest = next;
        }
        assert_eq!(raw[0].data.as_ref(), &frames[0][..]);
        assert_eq!(raw[1].data.as_ref(), &frames[1][..128]);
        assert_eq!((raw[1].incl_len, raw[1].orig_len), (128, 1514));
        // The lab reader gives the captured bytes of a cut capture.
        let read = read_pcap_bytes(&bytes).unwrap();
        assert_eq!(read[2], frames[2][..128]);
    }

    #[test]
    fn header_only_is_empty() {
        let bytes = write_all(DEFAULT_SNAPLEN, &[]);
        assert_eq!(bytes.len(), GLOBAL_HEADER_LEN);
        assert!(read_pcap_bytes(&bytes).unwrap().is_empty());
        assert_eq!(whole_records(&bytes), 0);
    }

    #[test]
    fn nanosecond_magic_both_orders() {
        let a: &[u8] = &[1, 2, 3];
        let b: &[u8] = &[4, 5, 6, 7];
        for big in [false, true] {
            let bytes = handmade(big, 0xa1b2_3c4d, &[(10, 999_999_999, a), (11, 5, b)]);
            let (header, packets) = parse(&bytes);
            assert_eq!(header.ts_resolution, TsResolution::NanoSecond);
            let order = if big {
                Endianness::Big
            } else {
                Endianness::Little
            };
            assert_eq!(header.endianness, order);
            assert_eq!(packets[0].timestamp, Duration::from_nanos(10_999_999_999));
            assert_eq!(packets[1].timestamp, Duration::from_nanos(11_000_000_005));
            assert_eq!(
                read_pcap_bytes(&bytes).unwrap(),
                vec![a.to_vec(), b.to_vec()]
            );
        }
    }

    #[test]
    fn microsecond_magic_byte_swapped() {
        let a: &[u8] = &[0xaa; 60];
        let bytes = handmade(true, 0xa1b2_c3d4, &[(3, 250_000, a)]);
        assert_eq!(&bytes[..4], &[0xa1, 0xb2, 0xc3, 0xd4]);
        let (header, packets) = parse(&bytes);
        assert_eq!(header.endianness, Endianness::Big);
        assert_eq!(header.ts_resolution, TsResolution::MicroSecond);
        assert_eq!(packets[0].timestamp, Duration::from_nanos(3_250_000_000));
        assert_eq!(read_pcap_bytes(&bytes).unwrap(), [a]);
    }

    #[test]
    fn truncated_record_body() {
        let mut bytes = write_all(DEFAULT_SNAPLEN, &frames());
        bytes.truncate(bytes.len() - 1);
        assert_eq!(whole_records(&bytes), 2);
        let err = read_pcap_bytes(&bytes).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let msg = err.to_string();
        // Records 1 and 2 are 16 + 60 and 16 + 1514 bytes after the 24-byte header.
        assert!(
            msg.contains("truncated record 3 at offset 1630: 9015 bytes remain"),
            "{msg}"
        );
    }

    #[test]
    fn truncated_record_header() {
        let mut bytes = write_all(DEFAULT_SNAPLEN, &frames()[..1]);
        bytes.extend_from_slice(&[0; 7]);
        assert_eq!(whole_records(&bytes), 1);
        let err = read_pcap_bytes(&bytes).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let msg = err.to_string();
        assert!(
            msg.contains("truncated record 2 at offset 100: 7 bytes remain"),
            "{msg}"
        );
    }

    #[test]
    fn short_and_foreign_files() {
        let err = read_pcap_bytes(&[]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            err.to_string()
                .contains("shorter than the 24-byte global header"),
            "{err}"
        );
        assert_eq!(whole_records(&[0xd4, 0xc3]), 0);

        let mut bytes = write_all(DEFAULT_SNAPLEN, &[]);
        bytes[..4].copy_from_slice(&MAGIC_PCAPNG);
        let err = read_pcap_bytes(&bytes).unwrap_err();
        assert!(err.to_string().contains("pcapng"), "{err}");

        bytes[..4].copy_from_slice(&[1, 2, 3, 4]);
        let err = read_pcap_bytes(&bytes).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("bad magic 0x04030201"), "{err}");

        let mut bytes = write_all(DEFAULT_SNAPLEN, &[]);
        bytes[20..24].copy_from_slice(&101u32.to_le_bytes()); // LINKTYPE_RAW
        let err = read_pcap_bytes(&bytes).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
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
        assert!(err.to_string().contains("timestamp"), "{err}");
        assert_eq!(w.packets_written(), 0);
        // Nothing but the global header was written.
        assert_eq!(w.into_inner().unwrap().len(), GLOBAL_HEADER_LEN);
    }
}
