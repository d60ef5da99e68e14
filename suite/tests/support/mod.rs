//! What the suite's end-to-end tests share.

use std::path::{Path, PathBuf};

/// The `server` and `loadgen` binaries for a test whose own binary is `me`: from
/// `$SUITE_TEST_BIN_DIR`, next to `me`, or in the sibling `release` directory. `None` when
/// they are not built (the test then says so and passes).
pub fn find_bins(me: &Path) -> Option<(PathBuf, PathBuf)> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("SUITE_TEST_BIN_DIR") {
        dirs.push(d.into());
    }
    if let Some(d) = me.parent() {
        dirs.push(d.to_path_buf());
        dirs.push(d.join("../release"));
    }
    dirs.into_iter().find_map(|d| {
        let (s, l) = (d.join("server"), d.join("loadgen"));
        (s.is_file() && l.is_file()).then_some((s, l))
    })
}
