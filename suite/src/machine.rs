//! What the run was made on: recorded once at the start, so a result can always be traced to
//! the machine, the kernel, the compiler and the exact commit that produced it.
//!
//! The host, kernel, CPU model and memory come from `/proc` on Linux. Elsewhere host and kernel
//! come from `uname`, and the CPU model and memory read `unknown` and 0: the suite's
//! measurements are Linux-only anyway (see [`procfs`](crate::procfs)).

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The machine and the build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Host name.
    pub host: String,
    /// `uname -sr`-like: operating system and kernel release.
    pub kernel: String,
    /// CPU model name from /proc/cpuinfo.
    pub cpu_model: String,
    /// CPUs this process may use.
    pub cores: usize,
    /// Their numbers, from the affinity mask (empty where unknown, and in older results).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus_allowed: Vec<usize>,
    /// Total memory, KiB.
    pub memory_kib: u64,
    /// `rustc --version`.
    pub rustc: String,
    /// Short commit hash of the working tree, `unknown` outside git.
    pub git_commit: String,
    /// True when the working tree had uncommitted changes.
    pub git_dirty: bool,
}

#[cfg(target_os = "linux")]
fn read(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_else(|_| "unknown".to_owned())
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Parses `model name` out of /proc/cpuinfo text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        l.split_once(':').filter(|(k, _)| k.trim() == "model name").map(|(_, v)| v.trim().to_owned())
    })
}

/// Describes this machine; `repo` is where git is asked about the commit.
pub fn describe(repo: &Path) -> Machine {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let (host, kernel) = host_and_kernel();
    Machine {
        host,
        kernel,
        cpu_model: cpu_model(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
            .unwrap_or_else(|| "unknown".to_owned()),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpus_allowed: crate::affinity::allowed().unwrap_or_default(),
        memory_kib,
        rustc: output(Command::new(rustc).arg("--version")).unwrap_or_else(|| "unknown".to_owned()),
        git_commit: output(Command::new("git").arg("-C").arg(repo).args(["rev-parse", "--short", "HEAD"]))
            .unwrap_or_else(|| "unknown".to_owned()),
        git_dirty: output(Command::new("git").arg("-C").arg(repo).args(["status", "--porcelain"]))
            .is_some_and(|s| !s.is_empty()),
    }
}

#[cfg(target_os = "linux")]
fn host_and_kernel() -> (String, String) {
    let kernel = format!("{} {}", read("/proc/sys/kernel/ostype"), read("/proc/sys/kernel/osrelease"));
    (read("/proc/sys/kernel/hostname"), kernel)
}

#[cfg(not(target_os = "linux"))]
fn host_and_kernel() -> (String, String) {
    let uname = |flag: &str| output(Command::new("uname").arg(flag)).unwrap_or_else(|| "unknown".to_owned());
    (uname("-n"), uname("-sr"))
}

/// `YYYY-MM-DD` (UTC) of a Unix time, by the civil-from-days algorithm (no date crate needed).
pub fn utc_date(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `<date>-<host>-<commit>`, the run directory's name.
pub fn run_id(unix_seconds: u64, machine: &Machine) -> String {
    let host: String =
        machine.host.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!("{}-{host}-{}", utc_date(unix_seconds), machine.git_commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_795_391_999), "2026-11-22");
        assert_eq!(utc_date(1_795_392_000), "2026-11-23");
    }

    #[test]
    fn cpu_model_is_found() {
        let text = "processor\t: 0\nvendor_id\t: X\nmodel name\t: Some CPU @ 3.00GHz\n";
        assert_eq!(cpu_model(text).as_deref(), Some("Some CPU @ 3.00GHz"));
        assert_eq!(cpu_model("nothing"), None);
    }
}
