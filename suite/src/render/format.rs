//! Number formatting for tables: fixed rules, so the same number always prints the same way
//! (the report must re-render byte for byte) and a reader sees at most three significant digits.

use super::Row;

/// Three significant digits without exponent: `1.23`, `12.3`, `123`, `1234`.
pub fn sig3(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// A latency given in nanoseconds, in the unit that keeps it readable: `850 ns`, `12.3 µs`,
/// `1.23 ms`, `2.50 s`.
pub fn latency(ns: f64) -> String {
    if ns < 1e3 {
        format!("{} ns", sig3(ns))
    } else if ns < 1e6 {
        format!("{} µs", sig3(ns / 1e3))
    } else if ns < 1e9 {
        format!("{} ms", sig3(ns / 1e6))
    } else {
        format!("{} s", sig3(ns / 1e9))
    }
}

/// A latency tick label: like [`latency`] without trailing zeros (`10 ms`, `2.5 µs`).
pub fn latency_tick(ns: f64) -> String {
    let text = latency(ns);
    match text.split_once(' ') {
        Some((num, unit)) if num.contains('.') => {
            format!("{} {unit}", num.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => text,
    }
}

/// A whole number with thousands separators: `1,234,567`.
pub fn thousands(x: f64) -> String {
    let n = x.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A size given in KiB: `812 KiB`, `6.02 MiB`, `1.20 GiB`.
pub fn kib(k: f64) -> String {
    if k < 1024.0 {
        format!("{} KiB", sig3(k))
    } else if k < 1024.0 * 1024.0 {
        format!("{} MiB", sig3(k / 1024.0))
    } else {
        format!("{} GiB", sig3(k / 1024.0 / 1024.0))
    }
}

/// Makes text safe inside a Markdown table cell.
pub fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Escapes text for SVG/XML.
pub fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// What one unit of throughput is: a request answered, (chat) a line said, whose latency is
/// then measured once per member it reaches, or (a new connection per request) a connection.
pub(super) fn unit(rows: &[&Row]) -> (&'static str, &'static str) {
    match rows.first().map(|r| (r.point.spec.proto.as_str(), r.point.spec.conn_per_request)) {
        Some((_, true)) => ("conn/s", "conn"),
        Some(("chat", _)) => ("lines/s", "line"),
        _ => ("req/s", "req"),
    }
}

/// Superscript digits for footnote marks: `¹`, `²`, … `¹⁰`.
pub fn superscript(n: usize) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    n.to_string().chars().map(|c| DIGITS[c.to_digit(10).unwrap_or(0) as usize]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_the_same_way_every_time() {
        assert_eq!(latency(850.0), "850 ns");
        assert_eq!(latency(12_345.0), "12.3 µs");
        assert_eq!(latency(1_234_567.0), "1.23 ms");
        assert_eq!(latency(2_500_000_000.0), "2.50 s");
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(latency_tick(10e6), "10 ms");
        assert_eq!(latency_tick(1e3), "1 µs");
        assert_eq!(latency_tick(100.0), "100 ns");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(kib(812.0), "812 KiB");
        assert_eq!(kib(6164.0), "6.02 MiB");
        assert_eq!(sig3(0.0), "0");
        assert_eq!(sig3(0.5234), "0.523");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
        assert_eq!(xml("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
        assert_eq!(superscript(1), "¹");
        assert_eq!(superscript(10), "¹⁰");
    }
}
