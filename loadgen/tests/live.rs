//! `loadgen run --live`: one line a second on stderr, the report on stdout as without it.

mod support;

use std::time::Duration;

use loadgen::ProtocolKind;
use support::{Behaviour, loadgen_binary, start};

const LIMIT: Duration = Duration::from_secs(30);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn live_run(behaviour: Behaviour, live: bool) -> (String, Vec<String>) {
    let server = start(ProtocolKind::EchoLine, behaviour);
    let addr = server.addr.to_string();
    let mut args = vec![
        "run",
        "--addr",
        &addr,
        "--proto",
        "echo-line",
        "--conns",
        "2",
        "--warmup",
        "1s",
        "--duration",
        "2s",
    ];
    if live {
        args.push("--live");
    }
    let out = loadgen_binary(&args, LIMIT);
    let stderr = text(&out.stderr);
    let lines = stderr.lines().filter(|l| l.starts_with("live ")).map(str::to_owned).collect();
    (text(&out.stdout), lines)
}

/// The number next to `word` in a live line (`41,230 replies/s`, `errors 3`), as a number.
fn number_at(line: &str, word: &str) -> f64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == word).unwrap_or_else(|| panic!("no {word} in {line}"));
    // `replies/s` follows its number; `errors` precedes it.
    let raw = if word == "replies/s" { words[i - 1] } else { words[i + 1] };
    raw.replace(',', "").parse().unwrap_or_else(|_| panic!("{word} in {line}"))
}

#[test]
fn live_prints_a_line_a_second_with_rate_percentiles_and_errors() {
    let (stdout, lines) = live_run(Behaviour::Correct, true);
    // Three seconds of run: about three lines (the last one the part second before the end).
    assert!((3..=5).contains(&lines.len()), "{lines:#?}");
    assert!(lines[0].contains("warm-up"), "{lines:#?}");
    assert!(lines.last().unwrap().contains("measuring"), "{lines:#?}");
    for line in &lines {
        assert!(number_at(line, "replies/s") > 0.0, "{line}");
        assert!(line.contains(" p50 ") && line.contains(" p99 ") && line.contains("s  p99"), "{line}");
        assert_eq!(number_at(line, "errors"), 0.0, "{line}");
    }
    // The report is the one a run without --live prints: the same lines, other numbers. (The
    // warning that loadgen itself was busy comes and goes with the machine's load: not counted.)
    let (plain, none) = live_run(Behaviour::Correct, false);
    assert!(none.is_empty());
    let labels = |s: &str| {
        s.lines()
            .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
            .filter(|label| label != "warning:")
            .collect::<Vec<_>>()
    };
    assert_eq!(labels(&stdout), labels(&plain), "{stdout}\n---\n{plain}");
    assert!(!stdout.contains("live "), "{stdout}");
}

#[test]
fn live_lines_count_the_errors_of_their_second() {
    let (_, lines) = live_run(Behaviour::CorruptEvery(100), true);
    let errors: f64 = lines.iter().map(|l| number_at(l, "errors")).sum();
    assert!(errors > 0.0, "{lines:#?}");
}
