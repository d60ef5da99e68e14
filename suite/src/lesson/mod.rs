//! Lessons: one short, focused run of the suite, shown the way a class needs it.
//!
//! A lesson is an ordinary matrix file (`scripts/lessons/<name>.toml`) run by `suite run`, with
//! a `[lesson]` table that the run ignores and this module reads: the lesson's number and
//! title, the question it asks, which few columns its table shows and which one its bar chart
//! draws. Because results.json keeps the matrix text, everything here is computed from
//! results.json alone, so a committed reference run re-renders byte for byte.
//!
//! - [`metrics`]: the columns a lesson may show and how each is read from a point;
//! - [`table`]: the rows, as Markdown and as plain text for the terminal;
//! - [`chart`]: the bar chart, as text bars for the terminal and as an SVG;
//! - [`page`]: the lesson's page, `results/lessons/<name>/README.md`;
//! - [`guide`]: the generated blocks of `docs/EXPERIMENTS.md`.

pub mod chart;
pub mod guide;
pub mod metrics;
pub mod page;
pub mod table;

use std::path::Path;

use serde::Deserialize;

use crate::matrix;
use crate::results::{self, RunResults};

/// Where a lesson's page finds its chart, beside it.
pub const CHART_FILE: &str = "chart.svg";

/// The `[lesson]` table of a lesson's matrix.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LessonSpec {
    /// Place in the teaching order, from 1.
    pub number: u32,
    /// The name `scripts/lesson.sh` takes (also the matrix file's and results folder's name).
    pub name: String,
    /// Heading.
    pub title: String,
    /// The question the class answers, in one or two sentences.
    pub question: String,
    /// What to look at in the table, in one sentence.
    #[serde(default)]
    pub look: String,
    /// The table's columns, names from [`metrics::METRICS`], after the row label.
    pub columns: Vec<String>,
    /// The metric the bar chart draws, one bar per row.
    pub chart: String,
    /// An example of the `servers` crate that `scripts/lesson.sh` builds and runs in place of
    /// `server` (`naive_echo` for the framing lesson); the run's command lines record it.
    #[serde(default)]
    pub server_example: Option<String>,
}

/// Why a lesson could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum LessonError {
    /// results.json could not be read.
    #[error(transparent)]
    Load(#[from] results::LoadError),
    /// The matrix it keeps does not parse.
    #[error(transparent)]
    Matrix(#[from] matrix::MatrixError),
    /// The matrix has no `[lesson]` table: an ordinary suite run.
    #[error("the run's matrix has no [lesson] table: not a lesson (use `suite report` for a suite run)")]
    NotALesson,
    /// The `[lesson]` table is malformed.
    #[error("the matrix's [lesson] table: {0}")]
    Spec(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Reads the `[lesson]` table out of the matrix a run kept, and checks its metric names.
pub fn spec_of(results: &RunResults) -> Result<LessonSpec, LessonError> {
    let file = matrix::parse(&results.matrix_text)?;
    let table = file.lesson.ok_or(LessonError::NotALesson)?;
    let spec: LessonSpec = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| LessonError::Spec(e.to_string()))?;
    for name in spec.columns.iter().chain(std::iter::once(&spec.chart)) {
        if metrics::find(name).is_none() {
            let known: Vec<&str> = metrics::METRICS.iter().map(|m| m.name).collect();
            return Err(LessonError::Spec(format!("unknown metric `{name}` (known: {})", known.join(", "))));
        }
    }
    Ok(spec)
}

/// The files of a lesson's folder besides results.json: relative path and contents.
pub fn render(results: &RunResults) -> Result<Vec<(String, String)>, LessonError> {
    let spec = spec_of(results)?;
    let rows = table::rows(results, &spec);
    Ok(vec![
        ("README.md".to_owned(), page::render(results, &spec, &rows)),
        (CHART_FILE.to_owned(), chart::svg(results, &spec, &rows)),
    ])
}

/// What the terminal shows at the end of `scripts/lesson.sh`: the table and the text bars.
pub fn terminal(results: &RunResults) -> Result<String, LessonError> {
    let spec = spec_of(results)?;
    let rows = table::rows(results, &spec);
    let mut out = format!("Lesson {}: {}\n{}\n\n", spec.number, spec.title, spec.question);
    out.push_str(&table::text(&spec, &rows));
    out.push('\n');
    out.push_str(&chart::text(&spec, &rows));
    if !spec.look.is_empty() {
        out.push_str(&format!("\nLook at: {}\n", spec.look));
    }
    Ok(out)
}

fn write(path: &Path, text: &str) -> Result<(), LessonError> {
    std::fs::write(path, text).map_err(|source| LessonError::Io { path: path.display().to_string(), source })
}

/// Makes `out` a lesson's folder from the run directory `run`: copies its results.json (the
/// suite's logs, raw reports and histograms stay behind: the page needs none of them) and
/// renders the page and the chart beside it. With `run` equal to `out`, re-renders in place.
pub fn write_dir(run: &Path, out: &Path) -> Result<RunResults, LessonError> {
    let results = results::load(&run.join("results.json"))?;
    // Check before copying anything: a suite run without a [lesson] table is refused whole.
    let files = render(&results)?;
    std::fs::create_dir_all(out)
        .map_err(|source| LessonError::Io { path: out.display().to_string(), source })?;
    if run.join("results.json") != out.join("results.json") {
        results::save(&results, &out.join("results.json"))
            .map_err(|source| LessonError::Io { path: out.display().to_string(), source })?;
    }
    for (name, text) in files {
        write(&out.join(name), &text)?;
    }
    copy_failed_logs(&results, run, out)?;
    Ok(results)
}

/// Copies the logs of every repetition that failed (and only those: a lesson's folder stays
/// small) from `run` to the same relative paths under `out`.
fn copy_failed_logs(results: &RunResults, run: &Path, out: &Path) -> Result<(), LessonError> {
    let failed = results.points.iter().flat_map(|p| &p.repetitions).filter(|r| !r.ok());
    for rep in failed {
        let loadgen_logs = rep.loadgen.iter().flat_map(|l| &l.logs);
        for rel in std::iter::once(&rep.server.log).chain(loadgen_logs) {
            let (from, to) = (run.join(rel), out.join(rel));
            if from == to || !from.is_file() {
                continue;
            }
            let io = |source| LessonError::Io { path: to.display().to_string(), source };
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            std::fs::copy(&from, &to)
                .map_err(|source| LessonError::Io { path: to.display().to_string(), source })?;
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::render::tests::synthetic;

    /// The synthetic run of the render tests, made a lesson by a `[lesson]` table.
    pub fn synthetic_lesson(columns: &[&str], chart: &str) -> RunResults {
        let mut results = synthetic();
        let cols: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
        results.matrix_text.push_str(&format!(
            "\n[lesson]\nnumber = 3\nname = \"demo\"\ntitle = \"A demo\"\nquestion = \"Who wins?\"\n\
             columns = [{}]\nchart = \"{chart}\"\n",
            cols.join(", ")
        ));
        results
    }

    #[test]
    fn a_run_without_a_lesson_table_is_not_a_lesson() {
        assert!(matches!(spec_of(&synthetic()), Err(LessonError::NotALesson)));
    }

    #[test]
    fn unknown_metrics_are_refused_with_the_known_ones() {
        let err = spec_of(&synthetic_lesson(&["throughput", "speed"], "p99")).unwrap_err().to_string();
        assert!(err.contains("unknown metric `speed`") && err.contains("p99"), "{err}");
    }

    #[test]
    fn the_terminal_shows_title_table_and_bars() {
        let text = terminal(&synthetic_lesson(&["throughput", "p99"], "throughput")).unwrap();
        assert!(text.starts_with("Lesson 3: A demo\nWho wins?"), "{text}");
        assert!(text.contains("replies/s") && text.contains('█'), "{text}");
    }

    #[test]
    fn a_lesson_folder_re_renders_byte_for_byte() {
        let dir = std::env::temp_dir().join(format!("suite-lesson-test-{}", std::process::id()));
        let run = dir.join("run");
        let out = dir.join("out");
        std::fs::create_dir_all(&run).unwrap();
        let results = synthetic_lesson(&["throughput", "p99", "errors"], "p99");
        results::save(&results, &run.join("results.json")).unwrap();
        write_dir(&run, &out).unwrap();
        let first = std::fs::read_to_string(out.join("README.md")).unwrap();
        let svg = std::fs::read_to_string(out.join(CHART_FILE)).unwrap();
        write_dir(&out, &out).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("README.md")).unwrap(), first);
        assert_eq!(std::fs::read_to_string(out.join(CHART_FILE)).unwrap(), svg);
        assert!(svg.starts_with("<svg"), "{svg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
