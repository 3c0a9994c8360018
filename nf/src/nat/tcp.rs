//! TCP connection tracking for session timeouts (RFC 5382 section 5, REQ-5): a session is in
//! the *established* phase once SYNs were seen in both directions (or, for a connection
//! picked up mid-stream, once both sides sent segments without any SYN), and *transitory*
//! while partially open or closing (a FIN or RST seen). Established sessions use the
//! established idle-timeout (>= 2 h 4 min), the others the transitory one (>= 4 min).
//! A new SYN on a closed session starts it over (port reuse after TIME_WAIT).

use super::pkt::tcpflag;
use super::table::{CLASS_TCP_EST, CLASS_TCP_TRANS};

pub const SYN_IN: u8 = 1 << 0;
pub const SYN_OUT: u8 = 1 << 1;
pub const FIN_IN: u8 = 1 << 2;
pub const FIN_OUT: u8 = 1 << 3;
pub const RST: u8 = 1 << 4;
pub const SEEN_IN: u8 = 1 << 5;
pub const SEEN_OUT: u8 = 1 << 6;

/// The tracking bits after a segment with `flags` from the inside (`from_inside`) or outside.
#[inline]
pub fn update(state: u8, from_inside: bool, flags: u8) -> u8 {
    let mut s = state;
    let closed = s & RST != 0 || s & (FIN_IN | FIN_OUT) == (FIN_IN | FIN_OUT);
    if flags & tcpflag::SYN != 0 && flags & tcpflag::ACK == 0 && closed {
        s = 0;
    }
    s |= if from_inside { SEEN_IN } else { SEEN_OUT };
    if flags & tcpflag::SYN != 0 {
        s |= if from_inside { SYN_IN } else { SYN_OUT };
    }
    if flags & tcpflag::FIN != 0 {
        s |= if from_inside { FIN_IN } else { FIN_OUT };
    }
    if flags & tcpflag::RST != 0 {
        s |= RST;
    }
    s
}

/// The timeout class of a tracking state.
#[inline]
pub fn class(s: u8) -> u8 {
    if s & (RST | FIN_IN | FIN_OUT) != 0 {
        return CLASS_TCP_TRANS;
    }
    let both_syn = s & (SYN_IN | SYN_OUT) == (SYN_IN | SYN_OUT);
    let midstream = s & (SYN_IN | SYN_OUT) == 0 && s & (SEEN_IN | SEEN_OUT) == (SEEN_IN | SEEN_OUT);
    if both_syn || midstream {
        CLASS_TCP_EST
    } else {
        CLASS_TCP_TRANS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::pkt::tcpflag::*;

    fn run(steps: &[(bool, u8)]) -> Vec<u8> {
        let mut s = 0;
        steps
            .iter()
            .map(|&(i, f)| {
                s = update(s, i, f);
                class(s)
            })
            .collect()
    }

    #[test]
    fn rfc5382_handshake_data_close() {
        let c = run(&[
            (true, SYN),
            (false, SYN | ACK),
            (true, ACK),
            (true, ACK),
            (false, FIN | ACK),
            (true, FIN | ACK),
            (false, ACK),
        ]);
        use crate::nat::table::{CLASS_TCP_EST as E, CLASS_TCP_TRANS as T};
        assert_eq!(c, vec![T, E, E, E, T, T, T]);
    }

    #[test]
    fn rst_is_transitory_and_new_syn_restarts() {
        let mut s = update(update(0, true, SYN), false, SYN | ACK);
        assert_eq!(class(s), CLASS_TCP_EST);
        s = update(s, false, crate::nat::pkt::tcpflag::RST);
        assert_eq!(class(s), CLASS_TCP_TRANS);
        s = update(s, true, SYN);
        assert_eq!(s, SYN_IN | SEEN_IN);
        s = update(s, false, SYN | ACK);
        assert_eq!(class(s), CLASS_TCP_EST);
    }

    #[test]
    fn simultaneous_open_and_midstream_pickup() {
        // RFC 5382 REQ-2: simultaneous open (SYN both ways, no SYN-ACK first).
        assert_eq!(
            class(update(update(0, true, SYN), false, SYN)),
            CLASS_TCP_EST
        );
        let s = update(0, true, ACK);
        assert_eq!(class(s), CLASS_TCP_TRANS, "one side only");
        assert_eq!(class(update(s, false, ACK)), CLASS_TCP_EST);
    }
}
