//! `results.csv`: one line per point, every metric as median, min and max plus a noisy flag,
//! for spreadsheets and scripts. Values are raw numbers in the unit named by the header.

use std::fmt::Write as _;

use super::Row;
use crate::aggregate::{FIRST_METRICS, METRICS};

fn field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn number(x: f64) -> String {
    // Fixed precision: the same value always prints the same way.
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{x:.0}") } else { format!("{x:.3}") }
}

/// Renders the CSV text.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::from(
        "id,experiment,model,proto,size,conns,idle_conns,offered_rate,repetitions,ok_repetitions,status,fell_short",
    );
    // The metrics that came with process-tree sampling get columns only in runs that have them,
    // so an older run's CSV re-renders as it was.
    let later = rows.iter().any(|r| r.summary.stats[FIRST_METRICS..].iter().any(Option::is_some));
    let metrics = if later { METRICS.len() } else { FIRST_METRICS };
    for (name, unit) in &METRICS[..metrics] {
        let _ = write!(out, ",{name}_{unit}_median,{name}_{unit}_min,{name}_{unit}_max,{name}_noisy");
    }
    out.push('\n');
    for row in rows {
        let (p, s) = (&row.point.spec, &row.summary);
        let status = match &s.unavailable {
            Some(why) => format!("{}: {}", why.kind.label(), why.reason),
            None if s.ok() => "ok".to_owned(),
            None => format!("failed: {}", s.failures.join("; ")),
        };
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            field(&p.id),
            field(&p.experiment),
            field(&p.model),
            p.proto,
            field(&p.size),
            p.conns,
            p.idle_conns,
            row.point.rate.map(number).unwrap_or_default(),
            s.reps,
            s.ok_reps,
            field(&status),
            s.fell_short
        );
        for stat in &s.stats[..metrics] {
            match stat {
                Some(st) => {
                    let _ = write!(
                        out,
                        ",{},{},{},{}",
                        number(st.median),
                        number(st.min),
                        number(st.max),
                        st.noisy
                    );
                }
                None => out.push_str(",,,,"),
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a \"b\", c"), "\"a \"\"b\"\", c\"");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.12345), "0.123");
    }
}
