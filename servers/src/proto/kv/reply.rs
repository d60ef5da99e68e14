//! Writing RESP2 replies straight into the connection's output buffer: no `format!`, no
//! intermediate `String`, so a reply costs only the bytes it appends.

use super::frame::Broken;

/// `+OK\r\n` and friends: a status line.
pub fn simple(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'+');
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// `:42\r\n`.
pub fn integer(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// `$5\r\nhello\r\n`: a binary-safe string, its length first.
pub fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'$');
    decimal(out, bytes.len() as i64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// `$-1\r\n`: RESP2's "no such key".
pub fn nil(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// `-ERR text\r\n` (the text must already be free of line breaks).
pub fn error(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'-');
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// Append `bytes` to an error line under construction, at most `limit` of them, with line
/// breaks and other control bytes turned into spaces: a peer's bytes quoted in an error must
/// not end the line early and smuggle in a reply of their own (Redis does the same).
pub fn quoted(out: &mut Vec<u8>, bytes: &[u8], limit: usize) {
    let bytes = &bytes[..bytes.len().min(limit)];
    out.extend(bytes.iter().map(|&b| if b.is_ascii_control() { b' ' } else { b }));
}

/// The error reply for a framing error, worded as Redis words it where Redis has one.
pub fn protocol_error(out: &mut Vec<u8>, broken: Broken, max_request: usize) {
    out.extend_from_slice(b"-ERR Protocol error: ");
    match broken {
        Broken::MultibulkLength => out.extend_from_slice(b"invalid multibulk length"),
        Broken::BulkLength => out.extend_from_slice(b"invalid bulk length"),
        Broken::ExpectedDollar(got) => {
            out.extend_from_slice(b"expected '$', got '");
            quoted(out, &[got], 1);
            out.push(b'\'');
        }
        Broken::BulkNotTerminated => out.extend_from_slice(b"bulk string not followed by CRLF"),
        Broken::TooLong => {
            out.extend_from_slice(b"request longer than ");
            decimal(out, i64::try_from(max_request).unwrap_or(i64::MAX));
            out.extend_from_slice(b" bytes");
        }
        Broken::TooBigInline => out.extend_from_slice(b"too big inline request"),
        Broken::TooManyInline => out.extend_from_slice(b"too many arguments in inline request"),
        Broken::UnbalancedQuotes => out.extend_from_slice(b"unbalanced quotes in request"),
    }
    out.extend_from_slice(b"\r\n");
}

/// `n` in decimal, through a buffer on the stack.
pub fn decimal(out: &mut Vec<u8>, n: i64) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(crate::store::decimal(n, &mut buf));
}
