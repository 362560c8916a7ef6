//! The fuzz regression corpus: every input that once crashed, hung or exhausted memory in a
//! fuzz target (`fuzz/`, docs/FUZZING.md), replayed through the same entry point
//! (`deltascope::fuzzing`) without the fuzzer. Unlike the other modules this one calls the
//! library: the fuzz targets do, and the point is to run exactly what they ran.
//!
//! `tests/fuzz_regressions/<target>/<name>` is one input; an optional `<name>.expect` holds a
//! piece of the message it must now give (`accepted` when it must be accepted).

use std::path::Path;
use std::time::Instant;

use deltascope::fuzzing::{Outcome, TARGETS, run};

use crate::util::root;

#[test]
fn every_regression_input_is_handled() {
    let dir = root().join("tests/fuzz_regressions");
    let mut replayed = 0;
    for target in TARGETS {
        let tdir = dir.join(target);
        let Ok(entries) = std::fs::read_dir(&tdir) else {
            continue;
        };
        let mut inputs: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_none_or(|e| e != "expect"))
            .collect();
        inputs.sort();
        for input in inputs {
            replay(target, &input);
            replayed += 1;
        }
    }
    assert!(replayed >= 4, "only {replayed} regression inputs found");
}

fn replay(target: &str, input: &Path) {
    let data = std::fs::read(input).expect("read regression input");
    let started = Instant::now();
    let outcome = run(target, &data).expect("known target");
    // Hangs were among the bugs: each input must finish well inside a fuzzer's timeout,
    // even in a debug build.
    let took = started.elapsed();
    assert!(
        took.as_secs() < 10,
        "{target}/{}: took {took:?}",
        input.display()
    );
    let message = match &outcome {
        Outcome::Accepted => "accepted".to_string(),
        Outcome::Refused(m) => {
            assert!(!m.trim().is_empty(), "{}: empty message", input.display());
            m.clone()
        }
    };
    let expect = input.with_file_name(format!(
        "{}.expect",
        input.file_name().expect("name").to_string_lossy()
    ));
    if let Ok(want) = std::fs::read_to_string(&expect) {
        assert!(
            message.contains(want.trim()),
            "{target}/{}: message {message:?} lacks {:?}",
            input.display(),
            want.trim()
        );
    }
}
