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
    find_any(bytes, from, [a, b])
}

/// The first position at or after `from` that holds `a`, `b` or `c`.
#[inline]
pub fn find3(bytes: &[u8], from: usize, a: u8, b: u8, c: u8) -> Option<usize> {
    find_any(bytes, from, [a, b, c])
}

/// The first position at or after `from` that holds one of `needles`.
#[inline(always)]
fn find_any<const N: usize>(bytes: &[u8], from: usize, needles: [u8; N]) -> Option<usize> {
    let masks = needles.map(|n| LO * u64::from(n));
    let mut i = from;
    while let Some(word) = bytes.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        let hit = masks.iter().fold(0, |hit, &m| hit | zero_bytes(w ^ m));
        if hit != 0 {
            return Some(i + (hit.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes
        .get(i..)?
        .iter()
        .position(|c| needles.contains(c))
        .map(|p| i + p)
}

/// The first occurrence of `needle` in `hay`. For the short needles decoders look for in a
/// line (`" for "`, `"Reason:"`); `str::find` builds a two-way searcher per call, which costs
/// more than the search.
#[inline]
pub fn find_str(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    // Anchor on the needle's first byte that is not a space: spaces are everywhere.
    let k = n.iter().position(|&c| c != b' ').unwrap_or(0);
    let Some(&anchor) = n.get(k) else {
        return Some(0);
    };
    let mut from = k;
    while let Some(p) = find2(h, from, anchor, anchor) {
        let start = p - k;
        if h.get(start..start + n.len()) == Some(n) {
            return Some(start);
        }
        from = p + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(bytes: &[u8], from: usize, a: u8, b: u8) -> Option<usize> {
        (from..bytes.len()).find(|&i| bytes[i] == a || bytes[i] == b)
    }

    #[test]
    fn find_str_agrees_with_str_find() {
        let hay = "Teardown TCP connection 1 for outside:1.2.3.4/80 to inside:10.0.0.1/51 duration 0:00:01 bytes 42 TCP FINs";
        for needle in [
            "",
            " ",
            " for ",
            " to ",
            " duration ",
            "FINs",
            "s",
            " bytes ",
            "x",
            "  ",
            "Teardown",
            " TCP FINs ",
        ] {
            for from in 0..hay.len() {
                if hay.is_char_boundary(from) {
                    assert_eq!(
                        find_str(&hay[from..], needle),
                        hay[from..].find(needle),
                        "{needle:?} {from}"
                    );
                }
            }
        }
        assert_eq!(find_str("", ""), Some(0));
        assert_eq!(find_str("ab", "abc"), None);
        assert_eq!(find_str("  ", "   "), None);
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
                    let n3 = (from..s.len()).find(|&i| [a, b, b'!'].contains(&s[i]));
                    assert_eq!(find3(s, from, a, b, b'!'), n3, "{s:?} {from}");
                }
            }
        }
    }
}
