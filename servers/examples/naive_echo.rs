//! The framing lesson's two servers: a *naive* echo-line handler that takes each `read()` for
//! one whole message, and a *framed* one that cuts messages at `\n` whatever the reads
//! return. Not a model of the lab (those live in `src/models/` and all frame correctly through
//! `proto/`): an example, small enough to read in a minute, that shows live what goes wrong
//! without framing.
//!
//! TCP delivers a byte stream, not messages. A `read()` returns whatever has arrived: half a
//! message when it is larger than what arrived so far (a *split*), or several when the client
//! wrote them back to back (*coalesced*). On loopback, one small request at a time arrives in
//! one piece, so the naive handler passes every such test; send requests back to back
//! (`--depth 8`) or one larger than a read (`--size 16384`) and it answers wrongly.
//!
//! It speaks just enough of `server`'s command line for the suite to run it
//! (`--server-bin target/release/examples/naive_echo`): `--list-models`, `--check`,
//! `--model naive|framed`, `--proto echo-line`, `--addr`, and it prints `listening on ADDR`.
//! One thread per connection, plain `std`; SIGTERM or SIGINT ends it at once (a demonstration
//! has nothing in flight worth a grace period).
//!
//! ```text
//! cargo run --release -p servers --example naive_echo -- --model naive
//! loadgen run --addr ADDR --proto echo-line --depth 8 --live
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use anyhow::{Context as _, bail};

const MODELS: [(&str, &str); 2] = [
    ("naive", "one read() taken for one message: breaks when TCP splits or coalesces"),
    ("framed", "messages cut at \\n whatever the reads return: the right way"),
];

/// What a naive handler reads at once: a typical buffer size.
const READ_BUFFER: usize = 4096;

/// Treats every `read()` as exactly one request line, as if TCP kept message boundaries.
fn serve_naive(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; READ_BUFFER];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        // "The message" is what this read returned, up to its first newline: anything after
        // that (the next request, coalesced into the same read) is silently dropped, and a
        // message cut short (split) is answered as if it were whole.
        let message = match buf[..n].iter().position(|&b| b == b'\n') {
            Some(end) => &buf[..end],
            None => &buf[..n],
        };
        // One write for the whole reply: two small writes would meet Nagle's algorithm and the
        // peer's delayed ACK (40 ms a reply), a different lesson.
        let mut reply = Vec::with_capacity(message.len() + 1);
        reply.extend_from_slice(message);
        reply.push(b'\n');
        stream.write_all(&reply)?;
    }
}

/// Cuts the stream at each `\n`, however the bytes arrived, and echoes each line whole.
fn serve_framed(stream: TcpStream) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        // A last line without its `\n` is not a complete message: the client went away.
        if line.last() != Some(&b'\n') {
            return Ok(());
        }
        writer.write_all(&line)?;
    }
}

/// `--name value` from the arguments, if present.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list-models") {
        for (name, what) in MODELS {
            println!("{name}\t{what}");
        }
        return Ok(());
    }
    let model = flag(&args, "--model").unwrap_or("naive");
    let proto = flag(&args, "--proto").unwrap_or("echo-line");
    let check = args.iter().any(|a| a == "--check");
    if !MODELS.iter().any(|(name, _)| *name == model) {
        bail!("unknown model {model}: naive or framed");
    }
    if proto != "echo-line" {
        // The suite's `--check` contract: one line on stderr, status 1.
        eprintln!("server: {model} does not serve {proto}: this example speaks echo-line only");
        std::process::exit(1);
    }
    if check {
        return Ok(());
    }
    let addr = flag(&args, "--addr").unwrap_or("127.0.0.1:0");
    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let mut signals =
        signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT])
            .context("installing the signal handler")?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            std::process::exit(0);
        }
    });
    let naive = model == "naive";
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || {
            // A connection's error (a reset peer) ends that connection only.
            let _ = if naive { serve_naive(stream) } else { serve_framed(stream) };
        });
    }
    Ok(())
}
