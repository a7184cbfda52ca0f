//! Addresses and numbers as text without allocating: every flow carries three or four
//! addresses, and `fmt` with a fresh `String` for each was most of the decoder's time.

use std::net::Ipv6Addr;

/// `0` … `255` as decimal digits followed by a dot, in four bytes (the rest zero), and how
/// many digits: an octet is written with one fixed-size copy.
const OCTETS: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let (h, d, u) = ((i / 100) as u8, ((i / 10) % 10) as u8, (i % 10) as u8);
        t[i] = if i >= 100 {
            ([b'0' + h, b'0' + d, b'0' + u, b'.'], 3)
        } else if i >= 10 {
            ([b'0' + d, b'0' + u, b'.', 0], 2)
        } else {
            ([b'0' + u, b'.', 0, 0], 1)
        };
        i += 1;
    }
    t
};

/// Room for the longest address text (an IPv6 address with an embedded IPv4 one: 45 bytes).
#[derive(Debug)]
pub(crate) struct Buf {
    bytes: [u8; 48],
    len: usize,
}

impl Default for Buf {
    fn default() -> Self {
        Buf {
            bytes: [0; 48],
            len: 0,
        }
    }
}

impl Buf {
    pub fn as_str(&self) -> &str {
        let b = &self.bytes[..self.len.min(self.bytes.len())];
        debug_assert!(b.is_ascii());
        // SAFETY: every writer of `bytes` writes ASCII only (digits, dots, hex digits, colons
        // from the standard library's address formatting), so any prefix is valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(b) }
    }

    fn push(&mut self, b: &[u8]) {
        if let Some(dst) = self.bytes.get_mut(self.len..self.len + b.len()) {
            dst.copy_from_slice(b);
            self.len += b.len();
        }
    }

    /// A dotted quad.
    pub fn ipv4(&mut self, a: [u8; 4]) -> &str {
        let mut len = 0;
        for x in a {
            let (d, n) = OCTETS[usize::from(x)];
            // At most 3 × 4 + 4 = 16 bytes of the 48 are touched.
            self.bytes[len..len + 4].copy_from_slice(&d);
            len += usize::from(n) + 1;
        }
        self.len = len - 1;
        self.as_str()
    }

    /// RFC 5952 text (the standard library's, written into the buffer).
    pub fn ipv6(&mut self, a: [u8; 16]) -> &str {
        use std::io::Write as _;
        let mut w = &mut self.bytes[..];
        let before = w.len();
        let _ = write!(w, "{}", Ipv6Addr::from(a));
        self.len = before - w.len();
        self.as_str()
    }

    /// A 4- or 16-byte address as text; `None` for other lengths.
    pub fn address(&mut self, v: &[u8]) -> Option<&str> {
        if let Ok(a) = <[u8; 4]>::try_from(v) {
            Some(self.ipv4(a))
        } else if let Ok(a) = <[u8; 16]>::try_from(v) {
            Some(self.ipv6(a))
        } else {
            None
        }
    }

    /// A number in decimal.
    pub fn decimal(&mut self, mut n: u64) -> &str {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.len = 0;
        self.push(&digits[i..]);
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn same_text_as_the_standard_library() {
        let mut b = Buf::default();
        for a in [
            [0, 0, 0, 0],
            [255, 255, 255, 255],
            [10, 9, 100, 1],
            [192, 0, 2, 99],
        ] {
            assert_eq!(b.ipv4(a), Ipv4Addr::from(a).to_string());
        }
        for x in 0..=255u8 {
            assert_eq!(
                b.ipv4([x, 1, x, 10]),
                Ipv4Addr::from([x, 1, x, 10]).to_string()
            );
        }
        for s in [
            "::",
            "2001:db8::1",
            "::ffff:192.0.2.1",
            "fe80::1:2:3:4",
            "1:2:3:4:5:6:7:8",
        ] {
            let a: Ipv6Addr = s.parse().expect("v6");
            assert_eq!(b.ipv6(a.octets()), a.to_string());
        }
        assert_eq!(b.address(&[1, 2, 3]), None);
        for n in [0, 7, 10, 255, 65_535, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(b.decimal(n), n.to_string());
        }
    }
}
