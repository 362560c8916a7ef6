//! One integration-test binary (ripgrep's layout). Each module says what belongs in it.
//! Tests drive the real `deltascope` executable; oracles are independent tools (qemu-img,
//! qemu-io) and computations from raw bytes, never deltascope's own library.

mod util;

mod blame;
mod cli;
mod completions;
mod esx;
mod growth;
mod guide;
mod hostile;
mod json_contract;
mod lun;
mod map_qemu;
mod readonly;
mod report;
mod samples;
mod scan_truth;
