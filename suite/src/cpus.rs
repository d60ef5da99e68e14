//! Which CPUs the server and loadgen run on: `--server-cpus` / `--loadgen-cpus` lists, checked
//! against the CPUs this process may use, or the default (server on CPU 0, loadgen on CPU 1).
//!
//! Two processes that share a CPU measure each other: loadgen's work would show up as the
//! server's latency. So the two lists must be disjoint, and every CPU in them must be one the
//! suite may use (a CPU outside its affinity mask, or one the machine does not have, would make
//! `sched_setaffinity` fail in the child, after the run had started). Everything here is pure:
//! the allowed CPUs come in as an argument ([`affinity`](crate::affinity) reads them).

use std::fmt;
use std::str::FromStr;

/// The highest CPU number a list may name: `cpu_set_t` holds 1,024 CPUs.
pub const MAX_CPU: usize = 1023;

/// A non-empty set of CPU numbers, ascending, written like `0-7`, `0,2,4` or `0-3,8-11`
/// (the notation of `taskset -c` and `/sys/devices/system/cpu/online`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

impl CpuList {
    /// The CPUs, ascending.
    pub fn cpus(&self) -> &[usize] {
        &self.0
    }
}

impl FromStr for CpuList {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let number = |s: &str| -> Result<usize, String> {
            let n: usize =
                s.trim().parse().map_err(|_| format!("`{text}`: `{}` is not a CPU number", s.trim()))?;
            if n > MAX_CPU {
                return Err(format!("`{text}`: CPU {n} is beyond the highest CPU number, {MAX_CPU}"));
            }
            Ok(n)
        };
        if text.trim().is_empty() {
            return Err("an empty CPU list: name at least one CPU, like 0-7 or 0,2,4".to_owned());
        }
        let mut cpus = Vec::new();
        for item in text.split(',') {
            let (low, high) = match item.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                None => (number(item)?, number(item)?),
            };
            if low > high {
                return Err(format!("`{text}`: the range {low}-{high} runs backwards"));
            }
            for cpu in low..=high {
                if cpus.contains(&cpu) {
                    return Err(format!("`{text}`: CPU {cpu} is named twice"));
                }
                cpus.push(cpu);
            }
        }
        cpus.sort_unstable();
        Ok(CpuList(cpus))
    }
}

/// Writes `cpus` back in the short notation, ranges merged: `0-3,8`.
pub fn format(cpus: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if j > i { format!("{}-{}", cpus[i], cpus[j]) } else { cpus[i].to_string() });
        i = j + 1;
    }
    parts.join(",")
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(&self.0))
    }
}

/// Where the children run. Empty lists: not pinned (`note` says why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The server's CPUs.
    pub server: Vec<usize>,
    /// loadgen's CPUs.
    pub loadgen: Vec<usize>,
    /// How they were chosen, or why there is no pinning.
    pub note: String,
}

/// Chooses the CPUs. `allowed` is the CPUs this process may use, or why they are unknown (no
/// `sched_getaffinity`: then only the unpinned default is possible). `asked` is the
/// `--server-cpus` and `--loadgen-cpus` pair, if given (both or neither); `loadgen_flag` is
/// what the caller's command calls the second (the abuse suite's is `--attack-cpus`), for the
/// messages.
pub fn choose(
    allowed: Result<&[usize], &str>,
    asked: Option<(&CpuList, &CpuList)>,
    loadgen_flag: &str,
) -> Result<Choice, String> {
    let Some((server, loadgen)) = asked else {
        return Ok(match allowed {
            Ok(a) if a.contains(&0) && a.contains(&1) => Choice {
                server: vec![0],
                loadgen: vec![1],
                note: "sched_setaffinity before exec (the suite itself is not pinned)".to_owned(),
            },
            Ok(a) => Choice {
                server: vec![],
                loadgen: vec![],
                note: format!(
                    "not pinned: this process may use CPU(s) {}, and the default needs both 0 and 1 \
                     (pass --server-cpus and {loadgen_flag})",
                    format(a)
                ),
            },
            Err(why) => Choice { server: vec![], loadgen: vec![], note: format!("not pinned: {why}") },
        });
    };
    let allowed =
        allowed.map_err(|why| format!("--server-cpus and {loadgen_flag} cannot be honoured: {why}"))?;
    for (flag, list) in [("--server-cpus", server), (loadgen_flag, loadgen)] {
        if let Some(cpu) = list.cpus().iter().find(|c| !allowed.contains(c)) {
            return Err(format!(
                "{flag} {list}: CPU {cpu} is not one this process may use (it may use {})",
                format(allowed)
            ));
        }
    }
    if let Some(cpu) = server.cpus().iter().find(|c| loadgen.cpus().contains(c)) {
        return Err(format!(
            "--server-cpus {server} and {loadgen_flag} {loadgen} share CPU {cpu}: the server and \
             loadgen must not compete for a CPU, or each measures the other"
        ));
    }
    Ok(Choice {
        server: server.cpus().to_vec(),
        loadgen: loadgen.cpus().to_vec(),
        note: format!(
            "sched_setaffinity before exec, as given by --server-cpus and {loadgen_flag} (the suite \
             itself is not pinned)"
        ),
    })
}

/// The CPU counts a scaling experiment steps through with `n` server CPUs: 1, 2, 4, … up to
/// `n`, and `n` itself when it is not a power of two (so the whole list is measured). With no
/// pinning (`n` = 0) only the one-CPU step makes sense.
pub fn scaling_steps(n: usize) -> Vec<usize> {
    let mut steps: Vec<usize> =
        std::iter::successors(Some(1usize), |s| s.checked_mul(2)).take_while(|s| *s <= n.max(1)).collect();
    if n > 1 && steps.last() != Some(&n) {
        steps.push(n);
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str) -> CpuList {
        text.parse().unwrap()
    }

    #[test]
    fn lists_parse_in_taskset_notation_and_print_back_short() {
        assert_eq!(list("0-7").cpus(), [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(list("0,2,4").cpus(), [0, 2, 4]);
        assert_eq!(list(" 8-9, 0-1 ").cpus(), [0, 1, 8, 9]);
        assert_eq!(list("3").to_string(), "3");
        assert_eq!(list("0-3,5,7-8").to_string(), "0-3,5,7-8");
    }

    #[test]
    fn bad_lists_are_refused_in_words_not_panics() {
        for (bad, says) in [
            ("", "empty"),
            ("  ", "empty"),
            ("0,,1", "not a CPU number"),
            ("a-b", "not a CPU number"),
            ("-1", "not a CPU number"),
            ("7-0", "backwards"),
            ("0-3,2", "twice"),
            ("1024", "beyond"),
            ("0-99999999999999999999999", "not a CPU number"),
        ] {
            let err = bad.parse::<CpuList>().unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_default_is_cpu_0_and_1_when_both_are_allowed() {
        let c = choose(Ok(&[0, 1, 2, 3]), None, "--loadgen-cpus").unwrap();
        assert_eq!((c.server, c.loadgen), (vec![0], vec![1]));
        let one = choose(Ok(&[0]), None, "--loadgen-cpus").unwrap();
        assert!(one.server.is_empty() && one.note.starts_with("not pinned"), "{one:?}");
        let unknown = choose(Err("no sched_setaffinity here"), None, "--loadgen-cpus").unwrap();
        assert!(unknown.note.contains("no sched_setaffinity here"));
    }

    #[test]
    fn given_lists_must_be_allowed_and_disjoint() {
        let allowed: Vec<usize> = (0..16).collect();
        let (s, l) = (list("0-7"), list("8-15"));
        let c = choose(Ok(&allowed), Some((&s, &l)), "--loadgen-cpus").unwrap();
        assert_eq!((c.server.len(), c.loadgen[0]), (8, 8));
        let out = choose(Ok(&[0, 1]), Some((&s, &l)), "--loadgen-cpus").unwrap_err();
        assert!(out.contains("CPU 2 is not one this process may use (it may use 0-1)"), "{out}");
        // Messages name the second list as the caller's command spells it.
        let overlap = choose(Ok(&allowed), Some((&list("0-4"), &list("4-5"))), "--attack-cpus").unwrap_err();
        assert!(overlap.contains("and --attack-cpus 4-5 share CPU 4"), "{overlap}");
        let nowhere = choose(Err("Linux only"), Some((&s, &l)), "--loadgen-cpus").unwrap_err();
        assert!(nowhere.contains("Linux only"), "{nowhere}");
    }

    #[test]
    fn scaling_steps_double_and_end_at_the_list() {
        assert_eq!(scaling_steps(0), [1]);
        assert_eq!(scaling_steps(1), [1]);
        assert_eq!(scaling_steps(2), [1, 2]);
        assert_eq!(scaling_steps(6), [1, 2, 4, 6]);
        assert_eq!(scaling_steps(8), [1, 2, 4, 8]);
    }
}
