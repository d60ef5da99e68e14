//! The suite's typed view of loadgen's `--json` report (schema_version 1).
//!
//! The report is stored whole in results.json as loadgen wrote it; this module reads only the
//! fields the suite needs and ignores the rest, so loadgen can add fields without breaking
//! the suite. Histograms are decoded here, because percentiles of several runs are only
//! correct when taken from the histograms added together, never by averaging percentiles.

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use serde::Deserialize;

/// The loadgen JSON schema this view understands.
pub const SUPPORTED_SCHEMA: u32 = 1;

/// The fields the suite reads.
#[derive(Debug, Clone, Deserialize)]
pub struct LoadgenDoc {
    /// Must be [`SUPPORTED_SCHEMA`].
    pub schema_version: u32,
    /// Counters.
    pub counts: Counts,
    /// True when loadgen exited 0.
    pub clean: bool,
    /// The first failure in words.
    #[serde(default)]
    pub first_error: Option<String>,
    /// Length of the measured phase.
    pub measured_seconds: f64,
    /// Replies per second over it.
    pub achieved_rate: f64,
    /// Open loop: the requested rate.
    #[serde(default)]
    pub requested_rate: Option<f64>,
    /// Open loop: achieved below 99% of requested.
    #[serde(default)]
    pub fell_short: bool,
    /// loadgen's own CPU use.
    pub cpu: Cpu,
    /// Summary percentiles, ns.
    pub percentiles: Pair<Option<Percentiles>>,
    /// Serialized histograms.
    pub histograms: Pair<Option<String>>,
}

/// The counters the suite reads.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Counts {
    /// Replies in the measured phase.
    pub requests: u64,
    /// Replies in the warm-up.
    pub warmup_requests: u64,
    /// Open loop: due requests never sent.
    pub unsent: u64,
}

/// loadgen's CPU use.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Cpu {
    /// User seconds.
    pub user_seconds: f64,
    /// System seconds.
    pub system_seconds: f64,
    /// CPU used over the thread-time available (measured seconds × loadgen threads), spinning
    /// for near open-loop sends included.
    pub share_of_threads: f64,
    /// The same without the spinning: near 1, loadgen itself was the limit. Missing from
    /// reports written before loadgen could spin, where it equals `share_of_threads`.
    pub busy_share: Option<f64>,
}

impl Cpu {
    /// The share of its threads' time loadgen needed.
    pub fn busy(&self) -> f64 {
        self.busy_share.unwrap_or(self.share_of_threads)
    }
}

/// Service time and corrected (open loop) variants.
#[derive(Debug, Clone, Deserialize)]
pub struct Pair<T> {
    /// Write to last byte of the reply.
    pub service_time: T,
    /// Open loop: due time to last byte of the reply.
    pub corrected: T,
}

/// Summary percentiles in nanoseconds.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Percentiles {
    /// Recorded values.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p99_9: u64,
    /// Largest value.
    pub max: u64,
}

/// Why a report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// Not the expected shape.
    #[error("loadgen report: {0}")]
    Shape(#[from] serde_json::Error),
    /// A schema this suite does not know.
    #[error("loadgen report schema_version {0} is not supported (expected {SUPPORTED_SCHEMA})")]
    Version(u32),
    /// A histogram that does not decode.
    #[error("loadgen report: histogram does not decode: {0}")]
    Histogram(String),
}

impl LoadgenDoc {
    /// Reads the typed view out of a stored report.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, DocError> {
        let doc: LoadgenDoc = serde_json::from_value(value.clone())?;
        if doc.schema_version != SUPPORTED_SCHEMA {
            return Err(DocError::Version(doc.schema_version));
        }
        Ok(doc)
    }

    /// The headline percentiles: corrected in open loop, service time in closed loop.
    pub fn headline(&self) -> Option<Percentiles> {
        self.percentiles.corrected.or(self.percentiles.service_time)
    }

    /// The headline histogram, decoded.
    pub fn headline_histogram(&self) -> Result<Option<Histogram<u64>>, DocError> {
        let text = self.histograms.corrected.as_ref().or(self.histograms.service_time.as_ref());
        text.map(|t| decode_histogram(t)).transpose()
    }
}

/// The non-zero error counters of a stored report, in words (`idle_closed 9872, resets 3`):
/// the reason to give when loadgen was not clean but named no first error.
pub fn error_counts(value: &serde_json::Value) -> String {
    const NOT_ERRORS: [&str; 3] = ["requests", "warmup_requests", "unsent"];
    let Some(counts) = value.get("counts").and_then(|c| c.as_object()) else {
        return "errors counted (no counts in the report)".to_owned();
    };
    let errors: Vec<String> = counts
        .iter()
        .filter(|(k, _)| !NOT_ERRORS.contains(&k.as_str()))
        .filter_map(|(k, v)| v.as_u64().filter(|n| *n > 0).map(|n| format!("{k} {n}")))
        .collect();
    if errors.is_empty() {
        "not clean, no error counted".to_owned()
    } else {
        format!("errors counted: {}", errors.join(", "))
    }
}

/// Decodes base64 HdrHistogram V2 (as loadgen writes it).
pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, DocError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| DocError::Histogram(e.to_string()))?;
    Deserializer::new().deserialize(&mut &bytes[..]).map_err(|e| DocError::Histogram(format!("{e:?}")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hdrhistogram::serialization::{Serializer as _, V2Serializer};

    /// A report as loadgen writes it, with a histogram of `values` and extra fields.
    pub fn sample_report(rate: f64, values: &[u64], open: bool) -> serde_json::Value {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        for v in values {
            h.record(*v).unwrap();
        }
        let mut bytes = Vec::new();
        V2Serializer::new().serialize(&h, &mut bytes).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let pct = serde_json::json!({
            "count": h.len(), "p50": h.value_at_quantile(0.5), "p90": h.value_at_quantile(0.9),
            "p99": h.value_at_quantile(0.99), "p99.9": h.value_at_quantile(0.999),
            "p99.99": h.value_at_quantile(0.9999), "max": h.max(), "mean": h.mean()
        });
        serde_json::json!({
            "schema_version": 1, "tool": "loadgen", "tool_version": "0.1.0",
            "settings": {"conns": 1}, "connections": {"opened": 1, "idle_opened": 0},
            "counts": {"requests": (rate * 2.0) as u64, "warmup_requests": 3, "mismatches": 0, "unsent": 0},
            "clean": true, "first_error": null, "measured_seconds": 2.0, "achieved_rate": rate,
            "requested_rate": if open { serde_json::json!(rate) } else { serde_json::Value::Null },
            "achieved_fraction": null, "fell_short": false,
            "cpu": {"user_seconds": 0.5, "system_seconds": 0.25, "per_request_ns": 10, "share_of_threads": 0.4},
            "latency_unit": "ns",
            "percentiles": {"service_time": pct, "corrected": if open { pct.clone() } else { serde_json::Value::Null }},
            "histograms": {"encoding": "hdrhistogram-v2+base64", "service_time": b64,
                           "corrected": if open { serde_json::json!(b64) } else { serde_json::Value::Null }},
            "a_future_field": [1, 2, 3]
        })
    }

    #[test]
    fn reads_loadgen_reports_and_their_histograms() {
        let value = sample_report(1000.0, &[1_000, 2_000, 3_000_000], false);
        let doc = LoadgenDoc::from_value(&value).unwrap();
        assert_eq!(doc.counts.requests, 2000);
        assert_eq!(doc.headline().unwrap().count, 3);
        let h = doc.headline_histogram().unwrap().unwrap();
        assert_eq!(h.len(), 3);
        assert!(h.max() >= 3_000_000);
        let mut wrong = value.clone();
        wrong["schema_version"] = 2.into();
        assert!(matches!(LoadgenDoc::from_value(&wrong), Err(DocError::Version(2))));
        assert!(decode_histogram("not base64!").is_err());
        let mut closed = value.clone();
        closed["counts"]["idle_closed"] = 9872.into();
        closed["counts"]["resets"] = 3.into();
        assert_eq!(error_counts(&closed), "errors counted: idle_closed 9872, resets 3");
    }

    #[test]
    fn loadgen_busy_leaves_spinning_out_when_the_report_says_how_much() {
        let mut value = sample_report(1000.0, &[1_000], true);
        assert_eq!(LoadgenDoc::from_value(&value).unwrap().cpu.busy(), 0.4, "older reports: all CPU");
        value["cpu"]["spin_seconds"] = 0.5.into();
        value["cpu"]["busy_share"] = 0.15.into();
        assert_eq!(LoadgenDoc::from_value(&value).unwrap().cpu.busy(), 0.15);
    }
}
