//! Diagnostics on stderr that can never take the server down.
//!
//! `eprintln!` panics if stderr is a closed pipe (a parent that stopped reading, `| head`);
//! a panic in an acceptor or a signal thread would stop a server that is otherwise healthy.
//! Lost log lines are the lesser evil.

use std::fmt;
use std::io::Write;

/// Write one line to stderr, or nothing if stderr is gone.
pub fn line(args: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}
