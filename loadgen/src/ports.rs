//! How many new connections per second one client address can open before it runs out of
//! ephemeral ports: the budget of a `--conn-per-request` run.
//!
//! Every connection from loadgen to the server is the four-tuple (client address, client port,
//! server address, server port); only the client port varies, chosen by the kernel from
//! `net.ipv4.ip_local_port_range` (32768–60999 by default: 28,232 ports). The side that closes
//! first keeps its end in TIME_WAIT for 60 s (fixed in Linux), and while it does, that
//! four-tuple cannot be used again, unless `net.ipv4.tcp_tw_reuse` allows a new `connect()` to
//! take over a TIME_WAIT port whose last packet is older than `net.ipv4.tcp_tw_reuse_delay`
//! (1 s; the file exists from Linux 6.13, and the delay was one second before). `tcp_tw_reuse`
//! is 0 (never), 1 (always) or 2 (only towards loopback, Linux's default since 5.7).
//!
//! So a client that closes first can sustain about `ports / 60 s` connections per second
//! without reuse (470 with the default range) and `ports / 1 s` with it (28,232). Beyond that
//! `connect()` fails with `EADDRNOTAVAIL` ("Cannot assign requested address"): loadgen counts
//! each such failure as `no_local_port` and says in words what ran out, rather than dropping
//! the request silently. Where the server closes first (HTTP's `Connection: close`), TIME_WAIT
//! is on the server's side and the client's ports come free at once.

use std::net::IpAddr;

use serde::Serialize;

/// TIME_WAIT's length in Linux (`TCP_TIMEWAIT_LEN`), not configurable.
pub const TIME_WAIT_SECONDS: f64 = 60.0;

/// What the kernel says about ephemeral ports, read once before a run. Every field is `None`
/// where the file is missing (another system, or an older kernel for the delay).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PortBudget {
    /// `net.ipv4.tcp_tw_reuse`: 0, 1 or 2.
    pub tcp_tw_reuse: Option<u8>,
    /// `net.ipv4.tcp_tw_reuse_delay`, milliseconds (Linux 6.13 and later).
    pub tcp_tw_reuse_delay_ms: Option<u64>,
    /// `net.ipv4.ip_local_port_range`, both ends included.
    pub local_port_range: Option<(u16, u16)>,
}

impl PortBudget {
    /// Reads the three settings from `/proc/sys/net/ipv4` (Linux); elsewhere, nothing.
    pub fn read() -> PortBudget {
        let file = |name: &str| std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}")).ok();
        PortBudget {
            tcp_tw_reuse: file("tcp_tw_reuse").and_then(|t| t.trim().parse().ok()),
            tcp_tw_reuse_delay_ms: file("tcp_tw_reuse_delay").and_then(|t| t.trim().parse().ok()),
            local_port_range: file("ip_local_port_range").as_deref().and_then(parse_port_range),
        }
    }

    /// How many ports the range holds.
    pub fn ports(&self) -> Option<u64> {
        self.local_port_range.map(|(lo, hi)| u64::from(hi.saturating_sub(lo)) + 1)
    }

    /// Whether a `connect()` to `server` may take over a port still in TIME_WAIT.
    pub fn reuses_time_wait(&self, server: IpAddr) -> Option<bool> {
        self.tcp_tw_reuse.map(|mode| match mode {
            0 => false,
            2 => server.is_loopback(),
            _ => true,
        })
    }

    /// Seconds a port stays unusable after its connection closed on the client's side.
    pub fn port_busy_seconds(&self, server: IpAddr) -> Option<f64> {
        let delay = self.tcp_tw_reuse_delay_ms.map_or(1.0, |ms| ms as f64 / 1000.0);
        self.reuses_time_wait(server).map(|reuse| if reuse { delay } else { TIME_WAIT_SECONDS })
    }

    /// About how many connections per second a client that closes first can open to `server`
    /// for as long as it likes, before every port is in TIME_WAIT.
    pub fn sustainable_rate(&self, server: IpAddr) -> Option<f64> {
        Some(self.ports()? as f64 / self.port_busy_seconds(server)?)
    }

    /// The settings in one line, for the summary and for error messages:
    /// `tcp_tw_reuse=2 (loopback), 28,232 ports (32768-60999)`.
    pub fn describe(&self) -> String {
        let reuse = match self.tcp_tw_reuse {
            Some(0) => "tcp_tw_reuse=0 (never)".to_owned(),
            Some(1) => "tcp_tw_reuse=1 (always)".to_owned(),
            Some(2) => "tcp_tw_reuse=2 (loopback only)".to_owned(),
            Some(n) => format!("tcp_tw_reuse={n}"),
            None => "tcp_tw_reuse unknown".to_owned(),
        };
        match (self.ports(), self.local_port_range) {
            (Some(n), Some((lo, hi))) => format!("{reuse}, {n} ports ({lo}-{hi})"),
            _ => format!("{reuse}, port range unknown"),
        }
    }

    /// The explanation that goes with an `EADDRNOTAVAIL` from `connect()` to `server`.
    pub fn exhausted(&self, server: IpAddr) -> String {
        let busy = match self.port_busy_seconds(server) {
            Some(s) if s >= TIME_WAIT_SECONDS => "in TIME_WAIT for 60 s after loadgen closes them".to_owned(),
            Some(s) => format!("reusable {s} s after loadgen closes them (tcp_tw_reuse)"),
            None => "held in TIME_WAIT after loadgen closes them".to_owned(),
        };
        let rate = self
            .sustainable_rate(server)
            .map(|r| format!(", about {:.0} new connections per second at most", r))
            .unwrap_or_default();
        format!(
            "no local port left: loadgen's ephemeral ports ({}) are {busy}{rate}; \
             widen net.ipv4.ip_local_port_range, set net.ipv4.tcp_tw_reuse=1, or use fewer --conns",
            self.describe()
        )
    }
}

/// Parses `ip_local_port_range`: two numbers separated by white space.
pub fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let mut it = text.split_whitespace().map(|n| n.parse::<u16>().ok());
    match (it.next()??, it.next()??, it.next()) {
        (lo, hi, None) if lo <= hi => Some((lo, hi)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const REMOTE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    fn linux_default() -> PortBudget {
        PortBudget {
            tcp_tw_reuse: Some(2),
            tcp_tw_reuse_delay_ms: Some(1000),
            local_port_range: Some((32768, 60999)),
        }
    }

    #[test]
    fn the_port_range_file_parses_and_nonsense_does_not() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_port_range("1024 65535"), Some((1024, 65535)));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("32768"), None);
        assert_eq!(parse_port_range("1 2 3"), None);
        assert_eq!(parse_port_range("a b"), None);
    }

    #[test]
    fn linux_defaults_reuse_on_loopback_only() {
        let b = linux_default();
        assert_eq!(b.ports(), Some(28_232));
        assert_eq!(b.sustainable_rate(LOOPBACK), Some(28_232.0));
        let remote = b.sustainable_rate(REMOTE).unwrap();
        assert!((remote - 28_232.0 / 60.0).abs() < 1e-9, "{remote}");
        let never = PortBudget { tcp_tw_reuse: Some(0), ..b };
        assert_eq!(never.reuses_time_wait(LOOPBACK), Some(false));
        let always = PortBudget { tcp_tw_reuse: Some(1), tcp_tw_reuse_delay_ms: None, ..b };
        assert_eq!(always.port_busy_seconds(REMOTE), Some(1.0), "one second before the delay was a setting");
        assert_eq!(PortBudget::default().sustainable_rate(LOOPBACK), None);
    }

    #[test]
    fn running_out_is_explained_with_the_settings_and_the_remedies() {
        let text = linux_default().exhausted(REMOTE);
        assert!(text.starts_with("no local port left"), "{text}");
        assert!(text.contains("tcp_tw_reuse=2 (loopback only), 28232 ports (32768-60999)"), "{text}");
        assert!(text.contains("in TIME_WAIT for 60 s"), "{text}");
        assert!(text.contains("about 471 new connections per second at most"), "{text}");
        assert!(text.contains("net.ipv4.tcp_tw_reuse=1"), "{text}");
        let text = linux_default().exhausted(LOOPBACK);
        assert!(text.contains("reusable 1 s after loadgen closes them"), "{text}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_machine_has_a_port_range() {
        assert!(PortBudget::read().ports().is_some_and(|n| n > 0));
    }
}
