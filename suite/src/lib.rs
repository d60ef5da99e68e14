//! # suite: the lab's benchmark runner
//!
//! One command runs every model of the lab through the same matrix of workloads and writes a
//! results directory that reads like a lab report. The suite never links the servers or
//! loadgen: it starts the `server` and `loadgen` binaries as child processes, exactly as a
//! person would, so what it measures is what ships.
//!
//! How the pieces fit, in the order data flows:
//! - [`models`]: the list of models, asked of the server binary (`server --list-models`);
//! - [`cpus`]: which CPUs the server and loadgen get ([`affinity`] asks and pins);
//! - [`matrix`]: the TOML matrix (default: `scripts/suite.toml`, compiled in) expanded into a
//!   flat plan of points, for those models and CPUs;
//! - [`runner`]: runs the plan point by point, repetition by repetition, with [`progress`];
//! - [`repetition`]: one server + one loadgen run ([`child`] starts, pins and stops
//!   processes; [`procfs`] samples the server);
//! - [`results`]: `results.json`, the raw record ([`machine`] describes where it ran;
//!   [`loadgen_doc`] reads loadgen's reports inside it);
//! - [`aggregate`]: medians, spreads, noisy flags and merged histograms;
//! - [`render`]: README.md, results.csv and SVG plots from results.json alone;
//! - [`lesson`]: a lesson's small table, bar chart and page, and the classroom guide's
//!   generated blocks;
//! - [`abuse`]: the abuse suite (the `abuse` binary, `scripts/abuse.sh`): every model against
//!   a dozen hostile clients, each cell scored pass, expected or fail.

pub mod abuse;
pub mod affinity;
pub mod aggregate;
pub mod child;
pub mod cpus;
pub mod lesson;
pub mod loadgen_doc;
pub mod machine;
pub mod matrix;
pub mod models;
pub mod procfs;
pub mod progress;
pub mod render;
pub mod repetition;
pub mod results;
pub mod runner;
