//! The client side of `kv` for the tests: RESP commands written out by hand, not by the
//! server's code.

/// A command as a RESP array of bulk strings: `*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`.
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}
