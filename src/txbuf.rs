//! Per-lcore, per-port TX buffer: packets collect until a full burst (or the drain timer) and
//! leave in one `rte_eth_tx_burst`; whatever the NIC refuses is freed at once and counted.

use crate::mbuf::{BURST_MAX, Burst, Mbuf};
use crate::port::TxQueue;

/// Result of a flush.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxResult {
    pub sent: u32,
    pub sent_bytes: u64,
    /// Packets the NIC refused: already freed.
    pub refused: u32,
}

impl TxResult {
    #[inline]
    pub fn add(&mut self, o: TxResult) {
        self.sent += o.sent;
        self.sent_bytes += o.sent_bytes;
        self.refused += o.refused;
    }
}

pub struct TxBuffer {
    queue: TxQueue,
    buf: Burst,
    threshold: usize,
    bytes: u64,
}

impl TxBuffer {
    /// A buffer that transmits when `threshold` packets are waiting (clamped to 1..=BURST_MAX).
    pub fn new(queue: TxQueue, threshold: usize) -> TxBuffer {
        TxBuffer {
            queue,
            buf: Burst::new(),
            threshold: threshold.clamp(1, BURST_MAX),
            bytes: 0,
        }
    }

    pub fn port_id(&self) -> u16 {
        self.queue.port_id()
    }

    pub fn queue_id(&self) -> u16 {
        self.queue.queue_id()
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Queues one packet, transmitting if the threshold is reached.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> TxResult {
        self.bytes += m.pkt_len() as u64;
        // The buffer is flushed whenever it reaches the threshold (<= BURST_MAX), so there is
        // always room here.
        let r = self.buf.push(m);
        debug_assert!(r.is_ok());
        drop(r);
        if self.buf.len() >= self.threshold {
            self.flush()
        } else {
            TxResult::default()
        }
    }

    /// Transmits a whole burst (every packet leaves `b`: sent, or refused and freed). Packets
    /// already waiting go first, so order is kept. A burst of at least half the threshold
    /// finding the buffer empty goes to the NIC straight from `b`, without being copied (DPDK
    /// l3fwd's `send_packetsx4` rule: a burst that lost a few packets to drops on the way is
    /// still sent as it is); smaller ones wait in the buffer, which transmits what it holds
    /// once the threshold is reached (up to [`BURST_MAX`] in one call).
    #[inline]
    pub fn push_burst(&mut self, b: &mut Burst) -> TxResult {
        self.push_burst_counted(b, None)
    }

    /// [`TxBuffer::push_burst`] for a burst whose total frame length the caller already knows
    /// (`bytes`: the sum of `pkt_len`, e.g. counted on receive and unchanged since), which
    /// saves a pass over the packets. `None`: count here.
    #[inline]
    pub fn push_burst_counted(&mut self, b: &mut Burst, bytes: Option<u64>) -> TxResult {
        debug_assert!(
            bytes.is_none_or(|n| n == sum(b.as_slice())),
            "wrong byte count for a burst"
        );
        let n = b.len();
        let waiting = self.buf.len();
        let mut r = TxResult::default();
        if waiting == 0 && n >= self.threshold.div_ceil(2) {
            return self.send_direct(b, bytes);
        }
        if waiting + n <= BURST_MAX {
            // Into the buffer in one block of pointers (order kept), transmitted with what
            // waits once the threshold is reached.
            self.bytes += bytes.unwrap_or_else(|| sum(b.as_slice()));
            b.move_front_to(&mut self.buf, n);
            if self.buf.len() >= self.threshold {
                r = self.flush();
            }
            return r;
        }
        // Too many for one call with what waits: that first, then the burst.
        r.add(self.flush());
        r.add(self.send_direct(b, bytes));
        r
    }

    /// `b` to the NIC as it is; what it refuses is freed.
    #[inline]
    fn send_direct(&mut self, b: &mut Burst, bytes: Option<u64>) -> TxResult {
        let bytes = bytes.unwrap_or_else(|| sum(b.as_slice()));
        let sent = self.queue.tx_burst(b);
        let refused = b.len();
        let mut sent_bytes = bytes;
        if refused > 0 {
            sent_bytes -= sum(b.as_slice());
            b.free_all();
        }
        TxResult {
            sent: sent as u32,
            sent_bytes,
            refused: refused as u32,
        }
    }

    /// Transmits everything waiting; frees what the NIC refuses.
    #[inline]
    pub fn flush(&mut self) -> TxResult {
        let n = self.buf.len();
        if n == 0 {
            return TxResult::default();
        }
        let sent = self.queue.tx_burst(&mut self.buf);
        let refused = self.buf.len();
        let mut bytes = self.bytes;
        if refused > 0 {
            bytes -= sum(self.buf.as_slice());
            self.buf.free_all();
        }
        self.bytes = 0;
        TxResult {
            sent: sent as u32,
            sent_bytes: bytes,
            refused: refused as u32,
        }
    }
}

/// The total frame length of `b`'s packets.
#[inline]
fn sum(b: &[Mbuf]) -> u64 {
    b.iter().map(|m| m.pkt_len() as u64).sum()
}

impl Drop for TxBuffer {
    fn drop(&mut self) {
        self.flush();
    }
}
