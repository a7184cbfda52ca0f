//! Byte searches for the short spans of a log line (a value, a key), eight bytes at a time.
//!
//! `memchr` is the right tool for long haystacks, but its set-up costs more than the search
//! when the answer is usually a few bytes away, as in `key=value` text. These read a machine
//! word at a time and test every byte of it at once (the "has zero byte" trick).

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// A mask with the high bit set in each byte of `w` that is zero. Bits above the lowest set
/// one may be false positives (borrows), so only the lowest is meaningful.
#[inline(always)]
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(LO) & !w & HI
}

/// The first position at or after `from` that holds `a` or `b`.
#[inline]
pub fn find2(bytes: &[u8], from: usize, a: u8, b: u8) -> Option<usize> {
    let (ma, mb) = (LO * u64::from(a), LO * u64::from(b));
    let mut i = from;
    while let Some(word) = bytes.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        let hit = zero_bytes(w ^ ma) | zero_bytes(w ^ mb);
        if hit != 0 {
            return Some(i + (hit.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes
        .get(i..)?
        .iter()
        .position(|&c| c == a || c == b)
        .map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(bytes: &[u8], from: usize, a: u8, b: u8) -> Option<usize> {
        (from..bytes.len()).find(|&i| bytes[i] == a || bytes[i] == b)
    }

    #[test]
    fn agrees_with_a_plain_loop() {
        let samples: [&[u8]; 6] = [
            b"",
            b"abc",
            b"srcip=10.1.2.3 srcport=51234",
            b"\x80\x81\xff\x01 \x00\"\\ tail after the quote\"",
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\t",
            b"\x21\x21\x21\x21\x21\x21\x21\x20",
        ];
        for s in samples {
            for from in 0..=s.len() + 1 {
                for (a, b) in [(b' ', b'\t'), (b'"', b'\\'), (0, 0x80), (0x21, 0x20)] {
                    assert_eq!(find2(s, from, a, b), naive(s, from, a, b), "{s:?} {from}");
                }
            }
        }
    }
}
