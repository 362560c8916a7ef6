//! Hot paths, measured with criterion: the zero test every grain goes through, classifying a
//! whole chain (the committed demo, and any chain whose top is `benches/data/chain/top.vmdk`),
//! and listing a layer's map. Compare runs on the same machine only.
#![allow(missing_docs)] // criterion's macros generate undocumented functions.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use deltascope::chain::{Chain, ChainOptions};
use deltascope::classify::{classify_layer, is_zero};
use deltascope::map::layer_map;
use deltascope::progress::NoProgress;
use deltascope::source::ReadMode;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chains() -> Vec<(&'static str, PathBuf)> {
    let mut v = vec![("demo", root().join("testdata/demo/win10-clone-000002.vmdk"))];
    let big = root().join("benches/data/chain/top.vmdk");
    if big.exists() {
        v.push(("bench-chain", big));
    }
    v
}

fn zero_test(c: &mut Criterion) {
    let mut g = c.benchmark_group("is_zero");
    for size in [4096usize, 65536] {
        let zeros = vec![0u8; size];
        let mut late = vec![0u8; size];
        late[size - 1] = 1;
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("zeros_{size}"), |b| {
            b.iter(|| is_zero(black_box(&zeros)))
        });
        g.bench_function(format!("last_byte_set_{size}"), |b| {
            b.iter(|| is_zero(black_box(&late)))
        });
    }
    g.finish();
}

fn classify_chain(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify");
    g.sample_size(10);
    for (name, top) in chains() {
        for mode in [ReadMode::Mmap, ReadMode::Read] {
            let opts = ChainOptions {
                mode,
                ..ChainOptions::default()
            };
            let chain = Chain::open(&top, &opts).expect("open bench chain");
            g.bench_function(format!("{name}_{mode:?}"), |b| {
                b.iter(|| {
                    for i in 0..chain.layers.len() {
                        black_box(classify_layer(&chain, i, &NoProgress).expect("classify"));
                    }
                })
            });
        }
    }
    g.finish();
}

fn map_layer(c: &mut Criterion) {
    let mut g = c.benchmark_group("map");
    for (name, top) in chains() {
        let chain = Chain::open(&top, &ChainOptions::default()).expect("open bench chain");
        g.bench_function(name, |b| {
            b.iter(|| black_box(layer_map(chain.top()).expect("map")))
        });
    }
    g.finish();
}

criterion_group!(benches, zero_test, classify_chain, map_layer);
criterion_main!(benches);
