//! Opening every connection before the clock starts.
//!
//! Connections are opened up front, one after another, so that connection setup (and a
//! listen backlog that overflows) is never part of a latency figure. The first failure is fatal
//! and reported in one line: nothing listening is a usage problem, not a measurement. Later
//! failures (the server or the kernel running out of room part-way) are counted and the run
//! goes on with the connections it has, so the report can say how many were refused.

use std::net::TcpStream;

use crate::config::RunConfig;
use crate::error::RunError;

/// The connections of a run, ready to hand to the workers.
#[derive(Debug, Default)]
pub struct Opened {
    /// Connections that will carry requests, with their run-wide ids.
    pub working: Vec<(u64, TcpStream)>,
    /// Connections that are only held open.
    pub idle: Vec<TcpStream>,
    /// Connections that could not be opened after the first one succeeded.
    pub errors: u64,
    /// The first such failure, in words.
    pub first_error: Option<String>,
}

/// Opens `cfg.conns` working and `cfg.idle_conns` idle connections to `cfg.addr`.
pub fn open_all(cfg: &RunConfig) -> Result<Opened, RunError> {
    open(cfg, cfg.conns)
}

/// Opens `working` working and `cfg.idle_conns` idle connections to `cfg.addr`.
/// `--conn-per-request` opens its own connections as it goes, and asks for one working
/// connection here only to learn that something listens (and closes it again).
pub fn open(cfg: &RunConfig, working: usize) -> Result<Opened, RunError> {
    let mut opened = Opened::default();
    let total = working + cfg.idle_conns;
    for n in 0..total {
        let stream = match TcpStream::connect_timeout(&cfg.addr, cfg.timeout) {
            Ok(stream) => stream,
            Err(source) if n == 0 => {
                return Err(RunError::Connect { addr: cfg.addr, source });
            }
            // A connect that times out means the server stopped completing handshakes (its
            // listen backlog is full: nobody accepts). Every later connect would wait out the
            // same timeout, so stop here and count them all as failed, at once.
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                let rest = (total - n) as u64;
                opened.errors += rest;
                opened.first_error.get_or_insert_with(|| {
                    format!(
                        "connection {n}: connect timed out after {:?} (is the server's accept \
                         queue full?); it and the {} after it were not opened",
                        cfg.timeout,
                        rest - 1
                    )
                });
                break;
            }
            Err(e) => {
                opened.errors += 1;
                if opened.first_error.is_none() {
                    opened.first_error = Some(format!("connection {n}: connect failed: {e}"));
                }
                continue;
            }
        };
        // Requests are small and written in batches already; Nagle's algorithm would only hold
        // a pipelined request back waiting for an acknowledgement, adding latency that is not
        // the server's.
        if let Err(e) = stream.set_nodelay(true) {
            opened.errors += 1;
            opened.first_error.get_or_insert_with(|| format!("connection {n}: TCP_NODELAY: {e}"));
            continue;
        }
        // Working first, or with `--idle-first` the idle ones first: the order in which the
        // server sees them arrive.
        let working_turn = if cfg.idle_first {
            opened.idle.len() >= cfg.idle_conns && opened.working.len() < working
        } else {
            opened.working.len() < working
        };
        if working_turn {
            // Ids are dense (0..conns) even if some connects failed: they pick the
            // connection's slots in the open-loop timetable and the high bits of its sequence
            // numbers.
            let id = opened.working.len() as u64;
            opened.working.push((id, stream));
        } else {
            opened.idle.push(stream);
        }
    }
    Ok(opened)
}

/// Counts the idle connections that the server closed while they were held.
///
/// An idle connection must see no data and no EOF; a nonblocking read tells which without
/// waiting.
pub fn count_closed_idle(idle: &[TcpStream]) -> u64 {
    use std::io::Read;
    let mut closed = 0;
    for mut stream in idle {
        if stream.set_nonblocking(true).is_err() {
            closed += 1;
            continue;
        }
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            // EOF, a reset, or bytes nobody asked for: the server did not just hold it.
            _ => closed += 1,
        }
    }
    closed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProtocolKind;

    /// The server sees the connections arrive in the order they were opened: with
    /// `idle_first`, the idle ones first.
    #[test]
    fn idle_first_opens_the_idle_connections_before_the_working_ones() {
        for idle_first in [false, true] {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let mut cfg = RunConfig::new(listener.local_addr().unwrap(), ProtocolKind::EchoLine);
            cfg.conns = 2;
            cfg.idle_conns = 3;
            cfg.idle_first = idle_first;
            let opened = open_all(&cfg).unwrap();
            assert_eq!((opened.working.len(), opened.idle.len()), (2, 3));
            let first = listener.accept().unwrap().1;
            let first_idle = opened.idle[0].local_addr().unwrap() == first;
            let first_working = opened.working[0].1.local_addr().unwrap() == first;
            assert_eq!((first_idle, first_working), (idle_first, !idle_first));
            assert_eq!(opened.working.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [0, 1]);
        }
    }
}
