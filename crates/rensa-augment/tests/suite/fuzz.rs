//! Property-based fuzzing of everything a user's data reaches: pipelines of every operation and
//! of nested combinators (JSON, with hostile numbers), plans replayed from mutated JSON, both on
//! the CPU and through the tensor path on ndarray. Every case must give a result or an error,
//! never a panic, and results must be finite.
//!
//! The case count per target is `RENSA_FUZZ_CASES` (a small default that CI affords); the seed
//! of the run is `RENSA_FUZZ_SEED`. `cargo xtask fuzz TARGET --minutes N` runs a target with
//! fresh seeds for as long as it is told and reports how many cases passed.

use burn::tensor::Tensor;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rensa_augment::transforms::OPERATIONS;
use rensa_augment::{Image, Pipeline, Plan, apply_plans, images_to_tensor};
use rensa_testkit::TestBackend;
use serde_json::{Value, json};

/// The cases of one target: `RENSA_FUZZ_CASES`, or `default`.
fn cases(default: u32) -> u32 {
    std::env::var("RENSA_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `test` on `cases` values of `strategy`, seeded by `RENSA_FUZZ_SEED` (default 0), and
/// prints the count (which `cargo xtask fuzz` adds up).
fn fuzz<S: Strategy>(target: &str, default_cases: u32, strategy: S, test: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    let seed: u64 = std::env::var("RENSA_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let cases = cases(default_cases);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    runner
        .run(&strategy, |v| {
            test(v);
            Ok(())
        })
        .unwrap();
    println!("fuzz {target}: {cases} cases, seed {seed}, no panic");
}

/// Numbers as a hostile file would hold them: small, large, negative, at the limits.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-2.0f64..2.0).prop_map(|v| json!(v)),
        (0.0f64..1.0).prop_map(|v| json!(v)),
        (-500.0f64..500.0).prop_map(|v| json!(v)),
        (0u64..64).prop_map(|v| json!(v)),
        prop::sample::select(vec![
            json!(0),
            json!(1),
            json!(65535),
            json!(65536),
            json!(1u64 << 32),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1e300),
            json!(-1e300),
            json!(1e-300),
        ]),
    ]
}

/// A parameter's value: a number, a pair, or a word.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => number(),
        2 => (number(), number()).prop_map(|(a, b)| json!([a, b])),
        1 => prop::sample::select(vec!["reflect", "edge", "constant", "nearest", "bilinear", "x"])
            .prop_map(|s| json!(s)),
    ]
}

const FIELDS: &[&str] = &[
    "p",
    "limit",
    "range",
    "width",
    "height",
    "scale",
    "ratio",
    "rotate",
    "translate_x",
    "translate_y",
    "shear_x",
    "shear_y",
    "brightness",
    "contrast",
    "saturation",
    "hue",
    "value",
    "std",
    "mean",
    "holes",
    "fill",
    "left",
    "top",
    "right",
    "bottom",
    "per_channel",
    "border",
    "interp",
];

/// One operation that is not a combinator, with zero to three random parameters.
fn leaf() -> impl Strategy<Value = Value> {
    let names: Vec<&'static str> = OPERATIONS
        .iter()
        .copied()
        .filter(|o| !matches!(*o, "compose" | "random_apply" | "one_of"))
        .collect();
    (
        prop::sample::select(names),
        // Half without parameters (most operations have defaults, so these reach the kernels),
        // half with one to three random ones (mostly refused, which tests the validation).
        prop_oneof![
            1 => Just(Vec::new()),
            1 => prop::collection::vec((prop::sample::select(FIELDS), value()), 1..4),
        ],
    )
        .prop_map(|(op, params)| {
            let mut obj = serde_json::Map::new();
            obj.insert("op".into(), op.into());
            for (k, v) in params {
                obj.insert(k.into(), v);
            }
            Value::Object(obj)
        })
}

/// A step: an operation, or a combinator of steps (nested up to three deep).
fn step() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 3, |inner| {
        let steps = prop::collection::vec(inner, 0..4);
        prop_oneof![
            steps
                .clone()
                .prop_map(|s| json!({ "op": "compose", "steps": s })),
            (value(), steps.clone())
                .prop_map(|(p, s)| json!({ "op": "random_apply", "p": p, "steps": s })),
            (
                steps,
                prop::option::of(prop::collection::vec(number(), 0..4))
            )
                .prop_map(|(s, w)| match w {
                    Some(w) => json!({ "op": "one_of", "steps": s, "weights": w }),
                    None => json!({ "op": "one_of", "steps": s }),
                }),
        ]
    })
}

/// A small image of random pixels, RGB or gray.
fn image() -> impl Strategy<Value = Image> {
    (
        1usize..20,
        1usize..20,
        prop::bool::weighted(0.8),
        any::<u64>(),
    )
        .prop_map(|(w, h, rgb, seed)| {
            let c = if rgb { 3 } else { 1 };
            let mut x = seed | 1;
            let data = (0..w * h * c)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            Image::new(w, h, c, data).unwrap()
        })
}

/// Every result on the tensor path is finite and has the batch's shape.
fn check_tensor(t: &Tensor<TestBackend, 4>, n: usize, what: &str) {
    assert_eq!(t.dims()[0], n, "{what}");
    let values: Vec<f32> = t.to_data().to_vec().unwrap();
    assert!(values.iter().all(|v| v.is_finite()), "{what}");
}

/// The pipelines target's default case count: cases are cheap (most are refused by validation),
/// and about 6% of them, some 300, run the kernels on every test run.
const PIPELINE_CASES: u32 = 5000;

#[test]
fn pipelines_of_every_operation_and_combinator() {
    let strategy = (
        prop::collection::vec(step(), 1..4),
        any::<u64>(),
        image(),
        any::<u64>(),
    );
    let (built, applied) = (std::cell::Cell::new(0usize), std::cell::Cell::new(0usize));
    fuzz(
        "pipelines",
        PIPELINE_CASES,
        strategy,
        |(steps, seed, img, index)| {
            let text = json!({ "seed": seed, "steps": steps }).to_string();
            let Ok(p) = Pipeline::from_json(&text, "fuzz") else {
                return;
            };
            built.set(built.get() + 1);
            if let Ok(out) = p.apply(&img, 0, index) {
                applied.set(applied.get() + 1);
                assert!(out.width() > 0 && out.height() > 0, "{text}");
                let f = p.apply_f32(&img, 0, index).unwrap();
                assert!(f.iter().all(|v| v.is_finite()), "{text}");
            }
            // The batched tensor path on ndarray: the image twice (samples `index`, `index + 1`).
            let batch = [img.clone(), img];
            if let Ok(t) = p.apply_tensor::<TestBackend>(&batch, 1, index, &Default::default()) {
                check_tensor(&t, 2, &text);
            }
        },
    );
    let (built, applied) = (built.get(), applied.get());
    println!("fuzz pipelines: {built} built, {applied} applied on the CPU");
    // The generator must reach the kernels, not only the validation (most random pipelines
    // name a parameter their operation does not have, and are refused): about 6% are built,
    // and at least 2.5% must be, whatever the seed.
    let n = cases(PIPELINE_CASES) as usize;
    assert!(
        built * 40 > n && applied * 50 > n,
        "built {built}, applied {applied} of {n}"
    );
}

/// Replaces the number at a random place of `v` (the `k`-th number in document order, counting
/// around) with `with`.
fn replace_number(v: &mut Value, k: &mut usize, with: &Value) -> bool {
    match v {
        Value::Number(_) => {
            if *k == 0 {
                *v = with.clone();
                return true;
            }
            *k -= 1;
            false
        }
        Value::Array(items) => items.iter_mut().any(|x| replace_number(x, k, with)),
        Value::Object(map) => map.values_mut().any(|x| replace_number(x, k, with)),
        _ => false,
    }
}

/// Pipelines whose plans have something to corrupt: crops, pads, resizes, erasing, affine maps.
const REPLAYED: [&str; 4] = [
    r#"{"seed": 1, "steps": [{"op": "random_crop", "width": 6, "height": 5}, {"op": "pad", "left": 2, "right": 3, "border": "reflect"}, {"op": "erasing", "p": 1}]}"#,
    r#"{"seed": 2, "steps": [{"op": "affine", "rotate": [-30, 30], "scale": [0.8, 1.2]}, {"op": "resize", "width": 9, "height": 7}, {"op": "gaussian_noise", "std": [0.01, 0.1]}]}"#,
    r#"{"seed": 3, "steps": [{"op": "random_resized_crop", "width": 8, "height": 8}, {"op": "color_jitter", "brightness": 0.3}, {"op": "gaussian_blur", "range": [0.5, 1.5]}]}"#,
    r#"{"seed": 4, "steps": [{"op": "rot90", "p": 1}, {"op": "center_crop", "width": 4, "height": 4}, {"op": "normalize"}]}"#,
];

#[test]
fn plans_replayed_from_corrupted_json() {
    let strategy = (
        0..REPLAYED.len(),
        any::<u64>(),
        prop::collection::vec((any::<usize>(), number()), 1..4),
    );
    fuzz("plans", 400, strategy, |(which, index, edits)| {
        let p = Pipeline::from_json(REPLAYED[which], "fuzz").unwrap();
        let img = Image::new(12, 10, 3, (0..360).map(|i| (i * 7) as u8).collect()).unwrap();
        let plan = p.plan(img.size(), 0, index).unwrap();
        let mut v = serde_json::to_value(&plan).unwrap();
        for (k, with) in edits {
            let mut k = k % 64;
            replace_number(&mut v, &mut k, &with);
        }
        let text = v.to_string();
        let Ok(plan) = serde_json::from_str::<Plan>(&text) else {
            return;
        };
        if let Ok(out) = plan.apply(&img) {
            assert!(out.width() > 0 && out.height() > 0, "{text}");
        }
        let input = images_to_tensor::<TestBackend>(&[img], &Default::default()).unwrap();
        if let Ok(t) = apply_plans(input, &[plan]) {
            check_tensor(&t, 1, &text);
        }
    });
}
