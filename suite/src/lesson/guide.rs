//! The generated blocks of `docs/EXPERIMENTS.md`. The guide's prose is written by hand; each
//! lesson's *measured result* sits between two markers,
//!
//! ```text
//! <!-- lesson-result NAME begin -->
//! …generated from results/lessons/NAME/results.json…
//! <!-- lesson-result NAME end -->
//! ```
//!
//! and is rewritten from the committed reference run by `suite lessons-guide`, never typed. A
//! test re-generates the committed guide and compares, so a figure in the guide can only be
//! one a committed run measured.

use std::path::Path;

use super::{LessonError, spec_of, table};
use crate::results::{self, RunResults};

const BEGIN: &str = "<!-- lesson-result ";
const BEGIN_END: &str = " begin -->";

/// The block for lesson `name`: its table and chart from `results`, or, with no reference run
/// committed yet, a line that says so and how to make one.
pub fn block(name: &str, results: Option<&RunResults>) -> Result<String, LessonError> {
    let Some(results) = results else {
        return Ok(format!(
            "_No reference run is committed yet: `scripts/lesson.sh {name} --reference` makes one._\n"
        ));
    };
    let spec = spec_of(results)?;
    let rows = table::rows(results, &spec);
    let mut s = format!("Measured by the reference run ([page](../results/lessons/{name}/README.md)):\n\n");
    s.push_str(&table::markdown(&spec, &rows));
    s.push_str(&format!("\n![{}](../results/lessons/{name}/{})\n\n", spec.title, super::CHART_FILE));
    s.push_str(&format!("Run: {}.\n", super::page::provenance(results)));
    Ok(s)
}

/// The guide `text` with every lesson-result block rewritten; `load(name)` gives a lesson's
/// reference run, if one is committed. Text outside the markers is kept byte for byte.
pub fn rewrite(
    text: &str,
    load: impl Fn(&str) -> Result<Option<RunResults>, LessonError>,
) -> Result<String, LessonError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(BEGIN) {
        let after = &rest[at + BEGIN.len()..];
        let Some(name_end) = after.find(BEGIN_END) else {
            return Err(LessonError::Spec(format!("a `{BEGIN}` marker without `{BEGIN_END}`")));
        };
        let name = &after[..name_end];
        let end_marker = format!("<!-- lesson-result {name} end -->");
        let body_start = at + BEGIN.len() + name_end + BEGIN_END.len();
        let Some(end_at) = rest[body_start..].find(&end_marker) else {
            return Err(LessonError::Spec(format!("no `{end_marker}` after its begin marker")));
        };
        out.push_str(&rest[..body_start]);
        out.push('\n');
        out.push_str(&block(name, load(name)?.as_ref())?);
        out.push_str(&end_marker);
        rest = &rest[body_start + end_at + end_marker.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Loads `lessons/NAME/results.json` when it exists.
pub fn loader(lessons: &Path) -> impl Fn(&str) -> Result<Option<RunResults>, LessonError> + '_ {
    move |name| {
        let path = lessons.join(name).join("results.json");
        if path.exists() { Ok(Some(results::load(&path)?)) } else { Ok(None) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lesson::tests::synthetic_lesson;

    #[test]
    fn blocks_are_rewritten_and_the_prose_kept() {
        let guide = "# Guide\n\nprose\n<!-- lesson-result demo begin -->\nstale figures\n\
                     <!-- lesson-result demo end -->\nmore prose\n<!-- lesson-result none begin --><!-- lesson-result none end -->\n";
        let run = synthetic_lesson(&["throughput", "p99"], "throughput");
        let load = |name: &str| Ok((name == "demo").then(|| run.clone()));
        let out = rewrite(guide, load).unwrap();
        assert!(out.starts_with("# Guide\n\nprose\n<!-- lesson-result demo begin -->\nMeasured by"), "{out}");
        assert!(!out.contains("stale"), "{out}");
        assert!(out.contains("| replies/s | p99 |") && out.contains("more prose\n"), "{out}");
        assert!(out.contains("No reference run is committed yet: `scripts/lesson.sh none"), "{out}");
        // Rewriting again changes nothing.
        assert_eq!(rewrite(&out, load).unwrap(), out);
    }

    #[test]
    fn a_missing_end_marker_is_an_error() {
        let err = rewrite("<!-- lesson-result x begin -->\n", |_| Ok(None)).unwrap_err();
        assert!(err.to_string().contains("lesson-result x end"), "{err}");
    }

    /// The committed guide is exactly what the committed reference runs generate.
    #[test]
    fn the_committed_guide_matches_its_reference_runs() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let guide_path = root.join("docs/EXPERIMENTS.md");
        let Ok(text) = std::fs::read_to_string(&guide_path) else {
            panic!("{} is missing", guide_path.display());
        };
        let lessons = root.join("results/lessons");
        let regenerated = rewrite(&text, loader(&lessons)).unwrap();
        assert!(
            regenerated == text,
            "docs/EXPERIMENTS.md differs from what the reference runs generate: run `suite lessons-guide`"
        );
    }

    /// Every relative link of the guide names a file that exists, and a line range within it
    /// (`file.rs#L10-L20`): a model file that shrank would otherwise leave the guide pointing
    /// past its end. (That the lines still say what the guide says is for a reader to check.)
    #[test]
    fn the_guides_links_point_at_existing_files_and_lines() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        let text = std::fs::read_to_string(docs.join("EXPERIMENTS.md")).unwrap();
        let mut checked = 0;
        for (at, _) in text.match_indices("](../") {
            let target = &text[at + 2..];
            let Some(end) = target.find(')') else { continue };
            let target = &target[..end];
            let (file, lines) = target.split_once("#L").map_or((target, None), |(f, l)| (f, Some(l)));
            let path = docs.join(file);
            assert!(path.exists(), "the guide links to {file}, which does not exist");
            if let Some(range) = lines {
                let last: usize =
                    range.rsplit('L').next().and_then(|n| n.trim_end_matches('-').parse().ok()).unwrap();
                let count = std::fs::read_to_string(&path).unwrap().lines().count();
                assert!(last <= count, "the guide links to {file} line {last}, but it has {count} lines");
            }
            checked += 1;
        }
        assert!(checked > 10, "only {checked} links found");
    }

    /// Every lesson's matrix names itself, and its committed reference run was made from
    /// exactly that matrix: a matrix edited without a new reference run would leave the guide
    /// quoting a lesson that no longer exists in that form.
    #[test]
    fn every_lesson_has_a_reference_run_of_its_current_matrix() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut numbers = Vec::new();
        for entry in std::fs::read_dir(root.join("scripts/lessons")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let run = results::load(&root.join("results/lessons").join(&name).join("results.json"))
                .unwrap_or_else(|e| panic!("lesson {name} has no reference run: {e}"));
            assert!(run.matrix_text == text, "scripts/lessons/{name}.toml changed since its reference run");
            let spec = spec_of(&run).unwrap();
            assert_eq!(spec.name, name, "the [lesson] table's name differs from the file's");
            numbers.push(spec.number);
        }
        numbers.sort_unstable();
        assert_eq!(
            numbers,
            (1..=numbers.len() as u32).collect::<Vec<_>>(),
            "lesson numbers are 1, 2, 3 … without gaps"
        );
    }
}
