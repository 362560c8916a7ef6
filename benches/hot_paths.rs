//! Hot paths, measured with criterion: the zero test every grain goes through, the grain-table
//! walk, the parent view's lookup through a three-layer chain, classifying a whole chain (the
//! committed demo, and any chain whose top is `benches/data/chain/top.vmdk`, e.g. a link to
//! one of benches/make-bench-chains.sh's), and listing a layer's map. Compare runs on the same
//! machine only; whole-program comparisons with qemu-img are benches/compare.sh's.
#![allow(missing_docs)] // criterion's macros generate undocumented functions.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use deltascope::bytes::is_zero;
use deltascope::chain::{Chain, ChainOptions};
use deltascope::classify::classify_layer;
use deltascope::map::layer_map;
use deltascope::progress::NoProgress;
use deltascope::source::ReadMode;
use deltascope::view::{ComposedView, Scratch, ViewBytes};

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

/// Every grain-table entry of the top layer, walked without classifying (metadata speed).
fn walk_tables(c: &mut Criterion) {
    let mut g = c.benchmark_group("grain_table_walk");
    for (name, top) in chains() {
        let chain = Chain::open(&top, &ChainOptions::default()).expect("open bench chain");
        let mut scratch = Vec::new();
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut allocated = 0u64;
                chain
                    .top()
                    .walk(&mut scratch, &mut |_, p| {
                        if p.state.is_allocated() {
                            allocated += p.len;
                        }
                        Ok(())
                    })
                    .expect("walk");
                black_box(allocated)
            })
        });
    }
    g.finish();
}

/// The parent view under the top of the demo's three-layer chain: each 4 KiB block resolved
/// through the clone below and the base (borrowed bytes or "zero" from metadata).
fn parent_lookup(c: &mut Criterion) {
    let top = root().join("testdata/demo/win10-clone-000002.vmdk");
    let chain = Chain::open(&top, &ChainOptions::default()).expect("open demo");
    assert_eq!(chain.layers.len(), 3);
    let view = ComposedView::new(&chain.layers, 2);
    let size = chain.top().virtual_size;
    let mut g = c.benchmark_group("parent_lookup");
    g.throughput(Throughput::Bytes(size));
    g.bench_function("demo_3_layers_4k", |b| {
        let mut buf = Vec::new();
        let mut scratch = Scratch::default();
        b.iter(|| {
            let mut zero = 0u64;
            for v in (0..size).step_by(4096) {
                if let ViewBytes::Zero = view
                    .resolve(v, 4096, &mut buf, &mut scratch)
                    .expect("resolve")
                {
                    zero += 1;
                }
            }
            black_box(zero)
        })
    });
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

criterion_group!(
    benches,
    zero_test,
    walk_tables,
    parent_lookup,
    classify_chain,
    map_layer
);
criterion_main!(benches);
