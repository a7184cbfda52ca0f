//! Parsers: pure functions from message bytes to rows of the normalised model. No I/O.
//!
//! Input: one framed message (`&[u8]`) and its [`event::Meta`] (sender, listener, receive time).
//! Output: a row appended to a [`canh_schema::TableBuilder`] of the `events` table, and the
//! parse [`event::Status`]. A line that no parser can read is still a row: its raw bytes go to
//! `event.original` (and `event.original_bytes` when not UTF-8) with status `failed`.
//!
//! Design decisions:
//! * Parsing borrows: header fields are slices of the input, so the only copies are the appends
//!   into Arrow builders.
//! * RFC 5424 is parsed strictly (it is a precise grammar and senders that claim it follow it);
//!   RFC 3164 is parsed leniently in `auto` mode because real devices bend it every way
//!   ([`syslog::rfc3164`] lists the variants), and strictly when the user names the format.
//! * The parse step ([`event::parse_line`]) is separate from writing the row, so tests and
//!   `canh parse` can inspect what was found.

/// Finds a constant needle in a haystack with a searcher built once per call site (building
/// one per call, as `memchr::memmem::find` does, costs more than the search on short lines).
#[macro_export]
#[doc(hidden)]
macro_rules! find {
    ($hay:expr, $needle:literal) => {{
        static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new($needle));
        FINDER.find($hay)
    }};
}

pub mod event;
pub mod generic;
pub mod netflow;
pub mod out;
pub mod scan;
pub mod syslog;
pub mod time;
pub mod vendor;

pub use event::{append_event, parse_line, Appended, Format, Meta, Parsed, Status};
pub use vendor::Decoder;
