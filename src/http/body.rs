//! Request body framing: decodes `Content-Length` and `Transfer-Encoding: chunked` bodies as a
//! stream, reading straight into the caller's buffer (the DMA buffer bound for disk) whenever the
//! connection buffer is empty.
//!
//! Invariants: never reads past the end of the body (pipelined requests stay intact); `100
//! Continue` is sent before the first body byte is requested and only then; a truncated or
//! malformed body is an error (`IncompleteBody`), never a short object.

use crate::http::conn::Connection;
use crate::http::error::{http_err, HttpError};

/// Longest chunk-size line (size + extensions) accepted in a chunked body.
pub(crate) const CHUNK_LINE_MAX_BYTES: usize = 4096;
/// Longest trailer section accepted after the last chunk.
pub(crate) const TRAILER_SECTION_MAX_BYTES: usize = 16 * 1024;
/// Most hex digits in a chunk size (15 digits = 60 bits, so no overflow is possible).
pub(crate) const CHUNK_SIZE_MAX_HEX_DIGITS: usize = 15;
/// A body slower than this on average (after [`BODY_RATE_GRACE`]) is cut off (slow clients).
pub(crate) const BODY_RATE_MIN_BYTES_PER_SEC: u64 = 4 * 1024;
/// Time a body may take before the minimum rate applies.
pub(crate) const BODY_RATE_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// How the request says its body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(u64),
    Chunked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length { remaining: u64 },
    ChunkHeader,
    ChunkData { remaining: u64 },
    ChunkDataEnd,
    Trailers,
    Done,
}

/// Streaming reader of one request's body over a [`Connection`].
pub(crate) struct BodyReader<'c> {
    conn: &'c mut Connection,
    state: State,
    continue_pending: bool,
    decoded_bytes: u64,
    declared: Option<u64>,
    chunked: bool,
    /// When the first body byte was requested (for the minimum-rate check).
    started: Option<std::time::Instant>,
}

impl<'c> BodyReader<'c> {
    pub(crate) fn new(
        conn: &'c mut Connection,
        framing: Framing,
        expects_continue: bool,
    ) -> BodyReader<'c> {
        let state = match framing {
            Framing::None | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length { remaining: n },
            Framing::Chunked => State::ChunkHeader,
        };
        BodyReader {
            conn,
            continue_pending: expects_continue && state != State::Done,
            state,
            decoded_bytes: 0,
            declared: match framing {
                Framing::Length(n) => Some(n),
                _ => None,
            },
            chunked: framing == Framing::Chunked,
            started: None,
        }
    }

    /// Whether every body byte (and chunked trailer) has been consumed.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The exact body length when the request declared one (`Content-Length`).
    pub(crate) fn declared_length(&self) -> Option<u64> {
        self.declared
    }

    /// Whether the body uses `Transfer-Encoding: chunked`.
    pub(crate) fn is_chunked(&self) -> bool {
        self.chunked
    }

    /// Whether the client still waits for `100 Continue` (it has sent no body byte yet).
    pub(crate) fn continue_pending(&self) -> bool {
        self.continue_pending
    }

    /// Body bytes delivered so far.
    pub(crate) fn decoded_bytes(&self) -> u64 {
        self.decoded_bytes
    }

    /// Reads up to `dst.len()` body bytes; `Ok(0)` means the body is complete.
    pub(crate) async fn read(&mut self, dst: &mut [u8]) -> Result<usize, HttpError> {
        if dst.is_empty() {
            return Ok(0);
        }
        if self.continue_pending {
            self.continue_pending = false;
            self.conn
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .map_err(|e| http_err!(IncompleteBody, "Connection lost: {e}"))?;
        }
        self.check_rate()?;
        loop {
            match self.state {
                State::Done => return Ok(0),
                State::Length { remaining } => {
                    let n = self.read_payload(dst, remaining).await?;
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::Done
                    } else {
                        State::Length { remaining: left }
                    };
                    return Ok(n);
                }
                State::ChunkData { remaining } => {
                    let n = self.read_payload(dst, remaining).await?;
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::ChunkDataEnd
                    } else {
                        State::ChunkData { remaining: left }
                    };
                    return Ok(n);
                }
                State::ChunkHeader => {
                    let line = self.take_line(CHUNK_LINE_MAX_BYTES).await?;
                    let size = parse_chunk_size(&line)?;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData { remaining: size }
                    };
                }
                State::ChunkDataEnd => {
                    let line = self.take_line(2).await?;
                    if !line.is_empty() {
                        return Err(malformed_chunk("chunk data not followed by CRLF"));
                    }
                    self.state = State::ChunkHeader;
                }
                State::Trailers => {
                    let mut total = 0usize;
                    loop {
                        let line = self.take_line(TRAILER_SECTION_MAX_BYTES).await?;
                        total += line.len() + 2;
                        if total > TRAILER_SECTION_MAX_BYTES {
                            return Err(malformed_chunk("trailer section too large"));
                        }
                        if line.is_empty() {
                            break;
                        }
                    }
                    self.state = State::Done;
                }
            }
        }
    }

    /// Fails a body that arrives slower than [`BODY_RATE_MIN_BYTES_PER_SEC`] after the grace time.
    fn check_rate(&mut self) -> Result<(), HttpError> {
        let started = *self.started.get_or_insert_with(std::time::Instant::now);
        let elapsed = started.elapsed();
        if elapsed > BODY_RATE_GRACE
            && self.decoded_bytes < BODY_RATE_MIN_BYTES_PER_SEC * elapsed.as_secs()
        {
            return Err(http_err!(
                RequestTimeout,
                "Your socket connection to the server was not read from or written to within the timeout period."
            ));
        }
        Ok(())
    }

    /// Reads payload bytes of a known-length stretch: from the buffer first, else from the socket.
    async fn read_payload(&mut self, dst: &mut [u8], remaining: u64) -> Result<usize, HttpError> {
        let want = (dst.len() as u64).min(remaining) as usize;
        let n = if !self.conn.buffered().is_empty() {
            let buffered = self.conn.buffered();
            let n = want.min(buffered.len());
            dst[..n].copy_from_slice(&buffered[..n]);
            self.conn.consume(n);
            n
        } else {
            self.conn.read_direct(&mut dst[..want]).await.map_err(|e| {
                http_err!(
                    IncompleteBody,
                    "Connection lost while reading the body: {e}"
                )
            })?
        };
        if n == 0 {
            return Err(if self.chunked {
                http_err!(
                    IncompleteBody,
                    "The chunked request body ended inside a chunk."
                )
            } else {
                http_err!(
                    IncompleteBody,
                    "You did not provide the number of bytes specified by the Content-Length HTTP header."
                )
            });
        }
        assert!(
            n <= want,
            "a read never passes the framing's remaining length"
        );
        self.decoded_bytes += n as u64;
        Ok(n)
    }

    /// Takes one CRLF-terminated line (without the CRLF) of at most `max` bytes from the stream.
    async fn take_line(&mut self, max: usize) -> Result<Vec<u8>, HttpError> {
        loop {
            let buffered = self.conn.buffered();
            if let Some(i) = memchr::memmem::find(buffered, b"\r\n") {
                if i > max {
                    return Err(malformed_chunk("line too long"));
                }
                let line = buffered[..i].to_vec();
                self.conn.consume(i + 2);
                return Ok(line);
            }
            if buffered.len() > max + 1 {
                return Err(malformed_chunk("line too long"));
            }
            let n = self.conn.fill().await.map_err(|e| {
                http_err!(
                    IncompleteBody,
                    "Connection lost while reading the body: {e}"
                )
            })?;
            if n == 0 {
                return Err(http_err!(IncompleteBody, "The chunked body ended early."));
            }
        }
    }
}

fn malformed_chunk(what: &str) -> HttpError {
    http_err!(IncompleteBody, "Malformed chunked body: {what}.")
}

/// Parses a chunk-size line (`hex[;ext...]`), rejecting overflow and junk.
pub fn parse_chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let hex_part = match memchr::memchr(b';', line) {
        Some(i) => &line[..i],
        None => line,
    };
    parse_chunk_size_hex(trim_ascii(hex_part)).ok_or_else(|| malformed_chunk("bad chunk size"))
}

/// A chunk size as both HTTP chunked framing and aws-chunked write it: 1 to
/// [`CHUNK_SIZE_MAX_HEX_DIGITS`] hex digits, nothing else.
pub(crate) fn parse_chunk_size_hex(hex: &[u8]) -> Option<u64> {
    if hex.is_empty() || hex.len() > CHUNK_SIZE_MAX_HEX_DIGITS {
        return None;
    }
    hex.iter().try_fold(0u64, |size, &b| {
        let digit = (b as char).to_digit(16)?;
        Some((size << 4) | u64::from(digit))
    })
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Determines the framing from the head, rejecting ambiguous combinations (request smuggling).
pub(crate) fn framing_of(head: &crate::http::head::RequestHead) -> Result<Framing, HttpError> {
    let te: Vec<&str> = head.header_all("transfer-encoding").collect();
    let cl: Vec<&str> = head.header_all("content-length").collect();
    if !te.is_empty() {
        if !cl.is_empty() {
            return Err(http_err!(
                InvalidRequest,
                "A request must not carry both Content-Length and Transfer-Encoding."
            ));
        }
        let joined = te.join(",").to_ascii_lowercase();
        let codings: Vec<&str> = joined
            .split(',')
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        if codings != ["chunked"] {
            return Err(http_err!(
                NotImplemented,
                "Transfer-Encoding {joined} is not supported; only chunked is."
            ));
        }
        return Ok(Framing::Chunked);
    }
    match cl.as_slice() {
        [] => Ok(Framing::None),
        [one] => {
            if one.is_empty() || one.len() > 19 || !one.bytes().all(|b| b.is_ascii_digit()) {
                return Err(http_err!(InvalidArgument, "Invalid Content-Length header."));
            }
            Ok(Framing::Length(one.parse().map_err(|_| {
                http_err!(InvalidArgument, "Invalid Content-Length header.")
            })?))
        }
        _ => {
            if cl.iter().all(|v| *v == cl[0]) {
                return Err(http_err!(
                    InvalidRequest,
                    "Duplicate Content-Length headers."
                ));
            }
            Err(http_err!(
                InvalidRequest,
                "Conflicting Content-Length headers."
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a").unwrap(), 26);
        assert_eq!(
            parse_chunk_size(b"100000;chunk-signature=abc").unwrap(),
            0x100000
        );
        assert_eq!(parse_chunk_size(b"0").unwrap(), 0);
        assert!(parse_chunk_size(b"").is_err());
        assert!(parse_chunk_size(b"zz").is_err());
        assert!(parse_chunk_size(b"ffffffffffffffffff").is_err());
    }
}
