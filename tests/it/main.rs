//! One integration-test binary (ripgrep's layout). Each module says what belongs in it.
//! Tests drive the real `deltascope` executable; oracles are independent tools (qemu-img,
//! qemu-io) and computations from raw bytes, never deltascope's own library. Two modules call
//! the library because the binary cannot do what they need: `fuzz_regressions` replays inputs
//! through the fuzz targets' entry points, `changing` changes files between open and scan.

mod stores;
mod util;

mod architecture;
mod blame;
mod cache;
mod changing;
mod cli;
mod completions;
mod corrupt;
mod devices;
mod diff;
mod esx;
mod fill;
mod fuzz_regressions;
mod golden;
mod growth;
mod guide;
mod history_store;
mod horizon;
mod hostile;
mod json_contract;
mod lun;
mod map_qemu;
mod memory;
mod metrics;
mod outputs;
mod presentation;
mod readonly;
mod report;
mod samples;
mod scan_truth;
mod shared_store;
mod sparse_base;
mod terminal;
mod tree;
mod user_input;
mod verdict;
