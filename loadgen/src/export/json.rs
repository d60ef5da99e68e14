//! `--json FILE`: one run as a versioned JSON document.
//!
//! Alongside the settings, counts and percentiles it carries each latency histogram whole, as
//! HdrHistogram's V2 binary serialization in base64 (the encoding HdrHistogram libraries in every
//! language read). Runs can then be merged by adding histograms, which is the only correct way to
//! combine percentiles. Fields are only ever added within a `schema_version`; a change in meaning
//! bumps it. The README documents every field.

use std::io;
use std::path::Path;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer as _, V2Serializer};
use serde::Serialize;

use crate::config::{ProtocolKind, RunConfig};
use crate::ports::PortBudget;
use crate::report::{Connects, Counts, Percentiles, RunReport};

/// Version of the document layout below.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    tool: &'static str,
    tool_version: &'static str,
    settings: &'a RunConfig,
    connections: Connections,
    counts: &'a Counts,
    clean: bool,
    first_error: Option<&'a str>,
    measured_seconds: f64,
    achieved_rate: f64,
    requested_rate: Option<f64>,
    achieved_fraction: Option<f64>,
    fell_short: bool,
    cpu: Cpu,
    latency_unit: &'static str,
    latency_measures: &'static str,
    percentiles: Pair<Option<Percentiles>>,
    histograms: Histograms,
    conn_per_request: Option<ChurnDoc<'a>>,
}

/// `--conn-per-request`: the new connections, the failed connects by cause, and the ports.
#[derive(Serialize)]
struct ChurnDoc<'a> {
    #[serde(flatten)]
    connects: &'a Connects,
    per_second: f64,
    closes_first: &'static str,
    ports: PortsDoc<'a>,
}

#[derive(Serialize)]
struct PortsDoc<'a> {
    #[serde(flatten)]
    settings: &'a PortBudget,
    sustainable_per_second: Option<f64>,
}

#[derive(Serialize)]
struct Connections {
    opened: usize,
    idle_opened: usize,
}

#[derive(Serialize)]
struct Cpu {
    user_seconds: f64,
    system_seconds: f64,
    per_request_ns: Option<u64>,
    share_of_threads: f64,
    spin_seconds: f64,
    busy_share: f64,
}

#[derive(Serialize)]
struct Pair<T> {
    service_time: T,
    corrected: T,
}

#[derive(Serialize)]
struct Histograms {
    encoding: &'static str,
    #[serde(flatten)]
    pair: Pair<Option<String>>,
}

/// Renders the JSON document for `report`, pretty-printed, fields in the documented order.
pub fn to_json(report: &RunReport) -> io::Result<String> {
    let recorded = report.config.verify;
    let service = recorded.then_some(&report.service_time);
    let corrected = report.corrected.as_ref().filter(|_| recorded);
    let doc = Document {
        schema_version: SCHEMA_VERSION,
        tool: "loadgen",
        tool_version: env!("CARGO_PKG_VERSION"),
        settings: &report.config,
        connections: Connections { opened: report.conns_opened, idle_opened: report.idle_opened },
        counts: &report.counts,
        clean: report.is_clean(),
        first_error: report.first_error.as_deref(),
        measured_seconds: report.measured().as_secs_f64(),
        achieved_rate: report.achieved_rate(),
        requested_rate: report.requested_rate(),
        achieved_fraction: report.achieved_fraction(),
        fell_short: report.fell_short(),
        cpu: Cpu {
            user_seconds: report.cpu.user.as_secs_f64(),
            system_seconds: report.cpu.system.as_secs_f64(),
            per_request_ns: report.cpu_per_request().map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            share_of_threads: report.cpu_share(),
            spin_seconds: report.spun.as_secs_f64(),
            busy_share: report.busy_share(),
        },
        latency_unit: "ns",
        latency_measures: match report.config.protocol {
            ProtocolKind::Chat => {
                "fan-out: a message's write to its read by each other member (one value per delivery)"
            }
            _ if report.churn.is_some() => "the start of a request's connect to the last byte of its reply",
            _ => "a request's write to the last byte of its reply",
        },
        percentiles: Pair {
            service_time: service.map(Percentiles::of),
            corrected: corrected.map(Percentiles::of),
        },
        histograms: Histograms {
            encoding: "hdrhistogram-v2+base64",
            pair: Pair {
                service_time: service.map(encode_histogram).transpose()?,
                corrected: corrected.map(encode_histogram).transpose()?,
            },
        },
        conn_per_request: report.churn.as_ref().map(|churn| ChurnDoc {
            connects: &churn.connects,
            per_second: report.connect_rate().unwrap_or(0.0),
            closes_first: if churn.server_closes { "server" } else { "client" },
            ports: PortsDoc {
                settings: &churn.ports,
                sustainable_per_second: churn.ports.sustainable_rate(report.config.addr.ip()),
            },
        }),
    };
    let mut text = serde_json::to_string_pretty(&doc).map_err(io::Error::other)?;
    text.push('\n');
    Ok(text)
}

/// Writes the document for `report` to `path`.
pub fn write(report: &RunReport, path: &Path) -> io::Result<()> {
    std::fs::write(path, to_json(report)?)
}

/// HdrHistogram V2 serialization, base64 (standard alphabet, padded).
pub fn encode_histogram(hist: &Histogram<u64>) -> io::Result<String> {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(hist, &mut bytes)
        .map_err(|e| io::Error::other(format!("serialising a histogram: {e:?}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Pacing, ProtocolKind};
    use crate::engine::histogram::latency_histogram;
    use crate::sys::CpuTime;
    use hdrhistogram::serialization::Deserializer;
    use std::time::Duration;

    fn report() -> RunReport {
        let mut config = RunConfig::new("127.0.0.1:7".parse().unwrap(), ProtocolKind::EchoFrame);
        config.pacing = Pacing::Open { rate: 500.0 };
        let mut service_time = latency_histogram();
        for v in [1_000, 2_000, 3_000, 1_000_000] {
            service_time.record(v).unwrap();
        }
        let mut corrected = service_time.clone();
        corrected.record(900_000_000).unwrap();
        RunReport {
            config,
            conns_opened: 1,
            idle_opened: 0,
            counts: Counts { requests: 5, ..Counts::default() },
            cpu: CpuTime { user: Duration::from_secs(1), system: Duration::from_secs(3) },
            spun: Duration::from_secs(2),
            first_error: None,
            service_time,
            corrected: Some(corrected),
            churn: None,
        }
    }

    #[test]
    fn document_is_versioned_and_histograms_round_trip() {
        let report = report();
        let text = to_json(&report).unwrap();
        assert!(text.starts_with("{\n  \"schema_version\": 1,"), "{text}");
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["schema_version"], 1);
        assert_eq!(doc["settings"]["protocol"], "echo-frame");
        assert_eq!(doc["settings"]["pacing"]["rate"], 500.0);
        assert_eq!(doc["counts"]["requests"], 5);
        let cpu = &doc["cpu"];
        let measured = report.measured().as_secs_f64();
        assert_eq!(cpu["spin_seconds"], 2.0);
        assert!((cpu["share_of_threads"].as_f64().unwrap() - 4.0 / measured).abs() < 1e-9, "{cpu}");
        assert!((cpu["busy_share"].as_f64().unwrap() - 2.0 / measured).abs() < 1e-9, "{cpu}");
        assert_eq!(doc["percentiles"]["corrected"]["max"], report.corrected.as_ref().unwrap().max());
        for (key, original) in
            [("service_time", &report.service_time), ("corrected", report.corrected.as_ref().unwrap())]
        {
            let text = doc["histograms"][key].as_str().unwrap();
            let bytes = base64::engine::general_purpose::STANDARD.decode(text).unwrap();
            let back: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
            assert_eq!(&back, original, "{key} must round-trip");
        }
    }

    #[test]
    fn conn_per_request_adds_connections_failed_connects_and_ports() {
        use crate::report::Churn;
        let mut report = report();
        assert!(serde_json::from_str::<serde_json::Value>(&to_json(&report).unwrap()).unwrap()["conn_per_request"]
            .is_null());
        report.config.pacing = Pacing::Closed;
        report.config.conn_per_request = true;
        report.corrected = None;
        let ports = PortBudget {
            tcp_tw_reuse: Some(2),
            tcp_tw_reuse_delay_ms: Some(1000),
            local_port_range: Some((32768, 60999)),
        };
        let connects = Connects { opened: 40, refused: 1, no_local_port: 2, ..Connects::default() };
        report.churn = Some(Churn { connects, ports, server_closes: false });
        let doc: serde_json::Value = serde_json::from_str(&to_json(&report).unwrap()).unwrap();
        assert_eq!(doc["settings"]["conn_per_request"], true);
        let churn = &doc["conn_per_request"];
        assert_eq!(churn["opened"], 40);
        assert_eq!(churn["per_second"], 40.0 / report.measured().as_secs_f64());
        assert_eq!((churn["refused"].as_u64(), churn["timed_out"].as_u64()), (Some(1), Some(0)));
        assert_eq!(churn["no_local_port"], 2);
        assert_eq!(churn["closes_first"], "client");
        assert_eq!(churn["ports"]["tcp_tw_reuse"], 2);
        assert_eq!(churn["ports"]["local_port_range"], serde_json::json!([32768, 60999]));
        assert_eq!(churn["ports"]["sustainable_per_second"], 28_232.0, "127.0.0.1 reuses ports after 1 s");
        assert_eq!(doc["latency_measures"], "the start of a request's connect to the last byte of its reply");
    }

    #[test]
    fn closed_loop_has_no_corrected_histogram() {
        let mut report = report();
        report.config.pacing = Pacing::Closed;
        report.corrected = None;
        let doc: serde_json::Value = serde_json::from_str(&to_json(&report).unwrap()).unwrap();
        assert!(doc["histograms"]["corrected"].is_null());
        assert!(doc["requested_rate"].is_null());
    }
}
