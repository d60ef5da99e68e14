//! `results/lessons/<name>/README.md`: the lesson's question, its table, its chart and where
//! the figures come from, all from results.json.

use super::table::{self, LessonRow};
use super::{CHART_FILE, LessonSpec};
use crate::results::RunResults;

/// One line on where and how the run was made, for the page and the guide.
pub fn provenance(results: &RunResults) -> String {
    let m = &results.machine;
    let dirty = if m.git_dirty { " with uncommitted changes" } else { "" };
    let pinning = match (results.pinning.server_cpu, results.pinning.loadgen_cpu) {
        (Some(s), Some(l)) => format!("server pinned to CPU {s}, loadgen to CPU {l}"),
        _ => results.pinning.note.clone(),
    };
    let spec = results.points.first().map(|p| &p.spec);
    let timing = spec.map_or(String::new(), |p| {
        format!(", {} × {} s measured after {} s of warm-up per point", p.repeat, p.duration_s, p.warmup_s)
    });
    format!(
        "{} on {} ({} CPUs, {}; {}), commit {}{dirty}; {pinning}{timing}; {:.0} s in all",
        results.started_at, m.host, m.cores, m.cpu_model, m.kernel, m.git_commit, results.wall_seconds
    )
}

/// The page.
pub fn render(results: &RunResults, spec: &LessonSpec, rows: &[LessonRow]) -> String {
    let mut s = format!("# Lesson {}: {}\n\n{}\n\n", spec.number, spec.title, spec.question);
    s.push_str(&format!(
        "Run it: `scripts/lesson.sh {}`. The guide, with predictions to make first and why it comes out \
         this way: `docs/EXPERIMENTS.md`.\n\n",
        spec.name
    ));
    s.push_str(&table::markdown(spec, rows));
    if !spec.look.is_empty() {
        s.push_str(&format!("\nLook at: {}\n", spec.look));
    }
    s.push_str(&format!("\n![{}]({CHART_FILE})\n\n", spec.title));
    s.push_str(&format!("Measured {}.\n\n", provenance(results)));
    s.push_str(&format!(
        "Every figure comes from [results.json](results.json) (each command line and loadgen's whole \
         reports); `suite lesson results/lessons/{0}` re-renders this page and the chart from it.\n",
        spec.name
    ));
    s
}
