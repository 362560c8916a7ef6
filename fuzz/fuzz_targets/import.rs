//! Fuzz target `import`: see `deltascope::fuzzing` and docs/FUZZING.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = deltascope::fuzzing::run("import", data);
});
