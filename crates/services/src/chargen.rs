//! The RFC 864 character generator pattern, sans-IO.
//!
//! RFC 864 "Data Syntax": the 95 printing ASCII characters form a ring; line N holds the 72
//! characters starting at ring position N (mod 95), followed by CR LF. We number the ring so
//! that line 0 begins with `!` (and the space follows `~`), which reproduces the RFC's example
//! output. The stream repeats every 95 lines, so one [`period`] (95 × 74 = 7030 octets) written
//! over and over is the whole TCP stream.

/// Printing characters per line (RFC 864).
pub const LINE_CHARS: usize = 72;
/// Octets per line including CR LF.
pub const LINE_LEN: usize = LINE_CHARS + 2;
/// Printing characters in ASCII: '!'..='~' and ' '.
pub const RING_LEN: usize = 95;
/// Upper bound of a UDP answer (RFC 864: "a random number (between 0 and 512) of characters").
pub const UDP_MAX: usize = 512;

fn ring(i: usize) -> u8 {
    // Position 0 is '!' (0x21), position 93 is '~' (0x7E), position 94 is ' ' (0x20).
    let i = i % RING_LEN;
    if i == RING_LEN - 1 {
        b' '
    } else {
        b'!' + i as u8
    }
}

/// Line `n` of the pattern, with CR LF.
pub fn line(n: usize) -> [u8; LINE_LEN] {
    let mut out = [0u8; LINE_LEN];
    for (k, slot) in out[..LINE_CHARS].iter_mut().enumerate() {
        *slot = ring(n % RING_LEN + k);
    }
    out[LINE_CHARS] = b'\r';
    out[LINE_CHARS + 1] = b'\n';
    out
}

/// One full period of the stream: lines 0..95.
pub fn period() -> Vec<u8> {
    (0..RING_LEN).flat_map(line).collect()
}

/// A UDP answer of `len` octets (capped at 512): lines from `first_line` on, cut at `len`.
/// Each datagram starts a fresh line, so a reader sees the pattern even without continuity.
pub fn datagram(first_line: usize, len: usize) -> Vec<u8> {
    let len = len.min(UDP_MAX);
    let mut out = Vec::with_capacity(len);
    let mut n = first_line;
    while out.len() < len {
        let l = line(n);
        let take = (len - out.len()).min(LINE_LEN);
        out.extend_from_slice(&l[..take]);
        n += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_example() {
        // RFC 864, "Data Syntax": the first two lines of the example.
        assert_eq!(
            &line(0)[..],
            &b"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n"[..]
        );
        assert_eq!(
            &line(1)[..],
            &b"\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghi\r\n"[..]
        );
        // The line starting with the space.
        assert_eq!(line(94)[0], b' ');
        assert_eq!(line(94)[1], b'!');
        assert_eq!(line(95), line(0));
    }

    #[test]
    fn every_line_is_72_printing_chars() {
        let p = period();
        assert_eq!(p.len(), 95 * 74);
        for l in p.chunks(LINE_LEN) {
            assert!(l[..72].iter().all(|&b| (0x20..=0x7e).contains(&b)));
            assert_eq!(&l[72..], b"\r\n");
            // The 72 characters are distinct (a window of a 95-ring).
            let mut seen = [false; 128];
            for &b in &l[..72] {
                assert!(!seen[b as usize]);
                seen[b as usize] = true;
            }
        }
    }

    #[test]
    fn datagrams_are_cut_lines() {
        assert!(datagram(0, 0).is_empty());
        assert_eq!(datagram(3, 10), line(3)[..10].to_vec());
        let d = datagram(7, 512);
        assert_eq!(d.len(), 512);
        assert_eq!(&d[..74], &line(7)[..]);
        assert_eq!(&d[74..148], &line(8)[..]);
        assert_eq!(datagram(0, 10_000).len(), 512);
    }
}
