//! Stream framing for syslog over TCP (RFC 6587): octet counting (`LEN SP MSG`) and
//! newline-terminated messages, detected from the first byte a connection sends.
//!
//! Kept apart from transports and formats: [`Framer`] takes bytes and yields frames, whatever
//! they contain.

/// How a stream separates messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Decide from the first byte: a digit means octet counting, anything else newlines.
    Auto,
    /// RFC 6587 §3.4.1: `MSG-LEN SP SYSLOG-MSG`.
    OctetCounting,
    /// RFC 6587 §3.4.2: messages end with LF.
    NonTransparent,
}

/// What happened to bytes the framer did not turn into a frame.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Discards {
    /// Messages longer than the maximum, dropped.
    pub oversize: u64,
    /// Empty lines.
    pub empty: u64,
}

/// Splits a byte stream into frames. Feed it with [`Framer::frames`]; bytes of an incomplete
/// frame stay in the buffer until more arrive.
#[derive(Debug)]
pub struct Framer {
    mode: Framing,
    max: usize,
    /// Bytes still to skip of an oversize octet-counted frame.
    skip: usize,
    /// Discarding an oversize newline-framed message until its newline.
    skip_line: bool,
}

impl Framer {
    pub fn new(mode: Framing, max_message_size: usize) -> Framer {
        Framer {
            mode,
            max: max_message_size.max(1),
            skip: 0,
            skip_line: false,
        }
    }

    /// The framing in use (after detection).
    pub fn mode(&self) -> Framing {
        self.mode
    }

    /// Takes every complete frame from the front of `buf`, calling `emit` with each, and
    /// removes the consumed bytes. Returns what was discarded.
    pub fn frames(&mut self, buf: &mut Vec<u8>, mut emit: impl FnMut(&[u8])) -> Discards {
        let mut d = Discards::default();
        let mut pos = 0;
        loop {
            if self.skip > 0 {
                let n = self.skip.min(buf.len() - pos);
                self.skip -= n;
                pos += n;
                if self.skip > 0 {
                    break;
                }
            }
            if self.skip_line {
                match memchr::memchr(b'\n', &buf[pos..]) {
                    Some(i) => {
                        pos += i + 1;
                        self.skip_line = false;
                    }
                    None => {
                        pos = buf.len();
                        break;
                    }
                }
            }
            let rest = &buf[pos..];
            let Some(&first) = rest.first() else { break };
            if self.mode == Framing::Auto {
                self.mode = if first.is_ascii_digit() {
                    Framing::OctetCounting
                } else {
                    Framing::NonTransparent
                };
            }
            let step = match self.mode {
                Framing::OctetCounting => self.octet_frame(rest, &mut d, &mut emit),
                _ => self.line_frame(rest, &mut d, &mut emit),
            };
            match step {
                Some(n) => pos += n,
                None => break,
            }
        }
        buf.drain(..pos);
        d
    }

    /// One octet-counted frame at the start of `rest`: bytes consumed, or `None` if incomplete.
    fn octet_frame(
        &mut self,
        rest: &[u8],
        d: &mut Discards,
        emit: &mut impl FnMut(&[u8]),
    ) -> Option<usize> {
        let digits = rest
            .iter()
            .take(11)
            .take_while(|b| b.is_ascii_digit())
            .count();
        match rest.get(digits) {
            None if digits < 11 => None,
            Some(b' ') if digits > 0 && digits <= 10 && rest[0] != b'0' => {
                let len: usize = rest[..digits]
                    .iter()
                    .fold(0usize, |v, &c| v * 10 + usize::from(c - b'0'));
                let start = digits + 1;
                if len > self.max {
                    d.oversize += 1;
                    self.skip = len;
                    return Some(start);
                }
                let msg = rest.get(start..start + len)?;
                emit(msg);
                Some(start + len)
            }
            // Not a length header: the sender is out of step or not octet counting after all.
            // Read up to the next newline as one frame, so the bytes are archived, not lost.
            _ => self.line_frame(rest, d, emit),
        }
    }

    /// One newline-terminated frame at the start of `rest`.
    fn line_frame(
        &mut self,
        rest: &[u8],
        d: &mut Discards,
        emit: &mut impl FnMut(&[u8]),
    ) -> Option<usize> {
        let Some(i) = memchr::memchr(b'\n', rest) else {
            if rest.len() > self.max {
                d.oversize += 1;
                self.skip_line = true;
                return Some(rest.len());
            }
            return None;
        };
        let mut line = &rest[..i];
        if let [head @ .., b'\r'] = line {
            line = head;
        }
        if line.len() > self.max {
            d.oversize += 1;
        } else if line.is_empty() {
            d.empty += 1;
        } else {
            emit(line);
        }
        Some(i + 1)
    }

    /// At end of stream: the bytes of an unfinished frame, if any, as a last frame (a message
    /// without its final newline, or a truncated octet-counted message, is still archived).
    pub fn finish(&mut self, buf: &mut Vec<u8>, mut emit: impl FnMut(&[u8])) -> Discards {
        let mut d = self.frames(buf, &mut emit);
        if !buf.is_empty() && self.skip == 0 && !self.skip_line {
            let mut rest = &buf[..];
            if self.mode == Framing::OctetCounting {
                if let Some(sp) = rest.iter().position(|&b| b == b' ') {
                    rest = &rest[sp + 1..];
                }
            }
            if rest.len() > self.max {
                d.oversize += 1;
            } else if !rest.is_empty() {
                emit(rest);
            }
        }
        buf.clear();
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mode: Framing, max: usize, pieces: &[&[u8]]) -> (Vec<Vec<u8>>, Discards, Framing) {
        let mut f = Framer::new(mode, max);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut total = Discards::default();
        for p in pieces {
            buf.extend_from_slice(p);
            let d = f.frames(&mut buf, |m| out.push(m.to_vec()));
            total.oversize += d.oversize;
            total.empty += d.empty;
        }
        let d = f.finish(&mut buf, |m| out.push(m.to_vec()));
        total.oversize += d.oversize;
        total.empty += d.empty;
        (out, total, f.mode())
    }

    #[test]
    fn detects_octet_counting_and_handles_split_reads() {
        let (out, d, mode) = run(Framing::Auto, 100, &[b"5 <1>a", b"b7 <2>xyz", b"w"]);
        assert_eq!(mode, Framing::OctetCounting);
        assert_eq!(out, vec![b"<1>ab".to_vec(), b"<2>xyzw".to_vec()]);
        assert_eq!(d, Discards::default());
    }

    #[test]
    fn octet_counting_frames_keep_newlines_inside() {
        let (out, _, _) = run(Framing::Auto, 100, &[b"6 <1>a\nb", b"3 <2>"]);
        assert_eq!(out, vec![b"<1>a\nb".to_vec(), b"<2>".to_vec()]);
    }

    #[test]
    fn newline_framing_strips_cr_and_counts_empty_lines() {
        let (out, d, mode) = run(Framing::Auto, 100, &[b"<1>a\r\n\n<2>b", b"\n<3>tail"]);
        assert_eq!(mode, Framing::NonTransparent);
        assert_eq!(
            out,
            vec![b"<1>a".to_vec(), b"<2>b".to_vec(), b"<3>tail".to_vec()]
        );
        assert_eq!(d.empty, 1);
    }

    #[test]
    fn oversize_messages_are_dropped_and_the_stream_stays_in_step() {
        let big = vec![b'x'; 50];
        let (out, d, _) = run(Framing::NonTransparent, 10, &[&big, &big, b"\n<1>ok\n"]);
        assert_eq!((out, d.oversize), (vec![b"<1>ok".to_vec()], 1));
        let (out, d, _) = run(Framing::OctetCounting, 10, &[b"50 ", &big, b"4 <1>k"]);
        assert_eq!((out, d.oversize), (vec![b"<1>k".to_vec()], 1));
    }

    #[test]
    fn a_bad_length_header_falls_back_to_a_line() {
        let (out, _, _) = run(Framing::OctetCounting, 100, &[b"12x garbage\n3 <1>"]);
        assert_eq!(out, vec![b"12x garbage".to_vec(), b"<1>".to_vec()]);
    }
}
