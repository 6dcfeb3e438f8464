//! Attention on every backend: Keras goldens where the definitions coincide
//! (`assets/golden/attention_keras.py`), weights that sum to one, masked keys with exactly zero
//! weight, an all-masked row of zeros, and one query step against a whole query sequence.

use burn::module::Param;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Bool, Tensor, TensorData};
use rensa_nn::attention::{Attention, AttentionConfig, AttentionParams, AttentionScore};
use rensa_nn::recurrent::{Differentiation, RecurrentBackend};
use rensa_testkit::{Tolerance, assert_close, normal_tensor, to_f64_vec};
use serde::Deserialize;

const SCORES: [AttentionScore; 4] = [
    AttentionScore::Additive,
    AttentionScore::Dot,
    AttentionScore::General,
    AttentionScore::Concat,
];

#[derive(Deserialize)]
struct GoldenCase {
    name: String,
    score: String,
    batch: usize,
    queries: usize,
    keys: usize,
    size: usize,
    value_size: usize,
    lengths: Option<Vec<usize>>,
    query: Vec<f64>,
    key: Vec<f64>,
    value: Vec<f64>,
    context: Vec<f64>,
    weights: Vec<f64>,
}

/// Keras's `Attention` (dot) and `AdditiveAttention` (the additive score with identity
/// projections, zero bias and `v = 1`), masked by length.
fn keras_goldens<B: RecurrentBackend>(dev: &B::Device, tol: Tolerance) {
    let cases: Vec<GoldenCase> = crate::golden_cases(include_str!(
        "../../../../assets/golden/attention_keras.json"
    ));
    assert_eq!(cases.len(), 4);
    for c in &cases {
        let (b, tq, tk, d, dv) = (c.batch, c.queries, c.keys, c.size, c.value_size);
        let attention = match c.score.as_str() {
            "dot" => AttentionConfig::new(d, d)
                .with_score(AttentionScore::Dot)
                .init::<B>(dev)
                .unwrap(),
            "additive" => {
                let eye = || Some(Param::from_tensor(Tensor::<B, 2>::eye(d, dev)));
                let params = AttentionParams {
                    query_weight: eye(),
                    query_bias: Some(Param::from_tensor(Tensor::zeros([d], dev))),
                    key_weight: eye(),
                    v: Some(Param::from_tensor(Tensor::ones([d], dev))),
                };
                Attention::from_params(AttentionScore::Additive, false, d, d, params).unwrap()
            }
            other => panic!("unknown golden score {other}"),
        };
        let query = crate::recurrent::host::<B, 3>(&c.query, [b, tq, d], dev);
        let keys = crate::recurrent::host::<B, 3>(&c.key, [b, tk, d], dev);
        let values = crate::recurrent::host::<B, 3>(&c.value, [b, tk, dv], dev);
        let out = attention.forward(query, keys, values, c.lengths.as_deref());
        let expected_w = crate::recurrent::host::<B, 3>(&c.weights, [b, tq, tk], dev);
        let expected_c = crate::recurrent::host::<B, 3>(&c.context, [b, tq, dv], dev);
        assert_close(
            out.weights,
            expected_w,
            tol,
            &format!("{}: weights", c.name),
        );
        assert_close(
            out.context,
            expected_c,
            tol,
            &format!("{}: context", c.name),
        );
    }
}

fn module<B: RecurrentBackend>(
    score: AttentionScore,
    q: usize,
    k: usize,
    dev: &B::Device,
) -> Attention<B> {
    let q = if score == AttentionScore::Dot { k } else { q };
    AttentionConfig::new(q, k)
        .with_score(score)
        .with_attention_size(Some(7))
        .with_scaled(matches!(
            score,
            AttentionScore::Dot | AttentionScore::General
        ))
        .init::<B>(dev)
        .unwrap()
}

/// Random queries `[b, tq, query_size]`, keys `[b, tk, key_size]` and values `[b, tk, dv]` for
/// `attention`, drawn with seeds `seed`, `seed + 1` and `seed + 2`.
fn inputs<B: RecurrentBackend>(
    attention: &Attention<B>,
    seed: u64,
    [b, tq, tk, dv]: [usize; 4],
    dev: &B::Device,
) -> [Tensor<B, 3>; 3] {
    [
        normal_tensor::<B, 3>(seed, [b, tq, attention.query_size], 1.0, dev),
        normal_tensor::<B, 3>(seed + 1, [b, tk, attention.key_size], 1.0, dev),
        normal_tensor::<B, 3>(seed + 2, [b, tk, dv], 1.0, dev),
    ]
}

/// Rows sum to one; masked keys get exactly zero; a sequence of length 0 gets zero weights and
/// a zero context, never NaN.
fn weights_and_masks<B: RecurrentBackend>(dev: &B::Device, tol: Tolerance) {
    let (b, tq, tk, k, dv) = (4, 3, 6, 5, 2);
    for score in SCORES {
        let attention = module::<B>(score, 4, k, dev);
        let [query, keys, values] = inputs(&attention, 1, [b, tq, tk, dv], dev);
        let lengths = [6, 2, 0, 5];
        let out = attention.forward(query, keys, values, Some(&lengths));
        let w = to_f64_vec(out.weights);
        let context = to_f64_vec(out.context);
        assert!(
            w.iter().chain(&context).all(|x| x.is_finite()),
            "{score:?}: non-finite output"
        );
        for (bi, &len) in lengths.iter().enumerate() {
            for t in 0..tq {
                let row = &w[(bi * tq + t) * tk..(bi * tq + t + 1) * tk];
                let sum: f64 = row.iter().sum();
                let expected = if len == 0 { 0.0 } else { 1.0 };
                assert!(
                    (sum - expected).abs() < tol.atol + tol.rtol,
                    "{score:?}: row {bi},{t} sums to {sum}"
                );
                assert!(
                    row[len..].iter().all(|&x| x == 0.0),
                    "{score:?}: masked keys of row {bi},{t} have weight: {:?}",
                    &row[len..]
                );
            }
        }
        let empty = &context[2 * tq * dv..3 * tq * dv];
        assert!(empty.iter().all(|&x| x == 0.0), "{score:?}: {empty:?}");
    }
}

/// A per-query mask (`[batch, queries, keys]`): a causal pattern, each query sees the keys up to
/// its own position.
fn per_query_mask<B: RecurrentBackend>(dev: &B::Device) {
    let (b, t, k) = (2, 4, 3);
    let attention = module::<B>(AttentionScore::General, 5, k, dev);
    let x = normal_tensor::<B, 3>(4, [b, t, k], 1.0, dev);
    let causal: Vec<bool> = (0..b * t * t).map(|i| (i % t) <= (i / t) % t).collect();
    let mask = Tensor::<B, 3, Bool>::from_data(TensorData::new(causal, [b, t, t]), dev);
    let memory = attention.memory(x.clone(), x).with_mask(mask);
    let query = normal_tensor::<B, 3>(5, [b, t, 5], 1.0, dev);
    let w = to_f64_vec(attention.attend(query, &memory).weights);
    for (i, &x) in w.iter().enumerate() {
        let (row, col) = ((i / t) % t, i % t);
        assert!(
            col <= row || x == 0.0,
            "weight {x} above the diagonal at {row},{col}"
        );
    }
}

/// The decoder-loop form (one query step at a time) gives the rows of the whole-sequence form.
fn step_matches_sequence<B: RecurrentBackend>(dev: &B::Device, tol: Tolerance) {
    let (b, tq, tk, k, dv) = (3, 4, 5, 6, 3);
    for score in SCORES {
        let attention = module::<B>(score, 4, k, dev);
        let [query, keys, values] = inputs(&attention, 6, [b, tq, tk, dv], dev);
        let memory = attention.memory(keys, values).with_lengths(&[5, 3, 1]);
        let all = attention.attend(query.clone(), &memory);
        for t in 0..tq {
            let step = query
                .clone()
                .narrow(1, t, 1)
                .reshape([b, attention.query_size]);
            let (context, weights) = attention.step(step, &memory);
            let what = format!("{score:?} step {t}");
            let row = |x: Tensor<B, 3>, w| x.narrow(1, t, 1).reshape([b, w]);
            assert_close(context, row(all.context.clone(), dv), tol, &what);
            assert_close(weights, row(all.weights.clone(), tk), tol, &what);
        }
    }
}

#[test]
#[should_panic(
    expected = "attention lengths[1]: expected a length in 0..=4 (the number of keys), got 5"
)]
fn a_length_past_the_keys_is_refused() {
    let dev = Default::default();
    let a = module::<rensa_testkit::TestBackend>(AttentionScore::Dot, 3, 3, &dev);
    let x = Tensor::zeros([2, 4, 3], &dev);
    let _ = a.memory(x.clone(), x).with_lengths(&[4, 5]);
}

#[test]
#[should_panic(expected = "attention query: expected [batch, queries, query size] = [2, _, 4]")]
fn a_query_of_the_wrong_size_is_refused() {
    let dev = Default::default();
    let a = module::<rensa_testkit::TestBackend>(AttentionScore::General, 4, 3, &dev);
    let x = Tensor::zeros([2, 4, 3], &dev);
    let memory = a.memory(x.clone(), x);
    let _ = a.attend(Tensor::zeros([2, 1, 3], &dev), &memory);
}

#[test]
fn scaled_scores_divide_by_the_length_of_their_product() {
    // general: qᵀ (W k) sums query-size products, whatever the key size
    let dev = Default::default();
    let general = module::<rensa_testkit::TestBackend>(AttentionScore::General, 4, 9, &dev);
    assert_eq!(general.scale, 1.0 / 2.0);
    let dot = module::<rensa_testkit::TestBackend>(AttentionScore::Dot, 9, 9, &dev);
    assert_eq!(dot.scale, 1.0 / 3.0);
}

/// Runs on ndarray every check; on wgpu (where each new shape compiles its kernels, slowly on
/// a software adapter) the Keras goldens and the masks, which cover every score.
/// The additive and concat scores' fused node (one kernel forward, one backward) against the
/// plain path (every tensor op recorded): the same context, weights and gradients for the
/// inputs and every parameter, for one query step and a whole query sequence, with padding.
fn fused_matches_plain<B: AutodiffBackend + RecurrentBackend>(dev: &B::Device, tol: Tolerance) {
    let (b, tk, k, dv) = (3, 7, 6, 4);
    for score in [AttentionScore::Additive, AttentionScore::Concat] {
        for tq in [1, 5] {
            let attention = module::<B>(score, 5, k, dev);
            let [query, keys, values] = inputs(&attention, 20, [b, tq, tk, dv], dev);
            let run = |how| {
                let attention = attention.clone().with_differentiation(how);
                let (q, k, v) = (
                    query.clone().require_grad(),
                    keys.clone().require_grad(),
                    values.clone().require_grad(),
                );
                let out = attention.forward(q.clone(), k.clone(), v.clone(), Some(&[7, 3, 1]));
                let r = normal_tensor::<B, 3>(30, [b, tq, tk], 1.0, dev);
                let loss = out.context.clone().sum() + (out.weights.clone() * r).sum();
                let grads = loss.backward();
                let mut all = vec![to_f64_vec(out.context), to_f64_vec(out.weights)];
                all.extend([q, k, v].map(|x| to_f64_vec(x.grad(&grads).unwrap())));
                let w2 = |p: &Option<Param<Tensor<B, 2>>>| p.as_ref().unwrap().grad(&grads);
                all.extend(
                    [&attention.query_weight, &attention.key_weight]
                        .map(|p| to_f64_vec(w2(p).unwrap())),
                );
                all.push(to_f64_vec(
                    attention.v.as_ref().unwrap().grad(&grads).unwrap(),
                ));
                all
            };
            let (fused, plain) = (run(Differentiation::Fused), run(Differentiation::Plain));
            let names = [
                "context", "weights", "d query", "d keys", "d values", "d W_q", "d W_k", "d v",
            ];
            for ((f, p), name) in fused.iter().zip(&plain).zip(names) {
                rensa_testkit::assert_slices_close(
                    f,
                    p,
                    tol,
                    &format!("{score:?}, {tq} queries: {name}"),
                );
            }
        }
    }
}

/// Every learned score against sums written out by hand, with non-square, asymmetric weights:
/// a swapped `W_q`/`W_k` or a transposed `W` gives other numbers (the Keras goldens have
/// identity projections only).
fn hand_computed_scores<B: RecurrentBackend>(dev: &B::Device, tol: Tolerance) {
    let (q, k, a) = (2usize, 3usize, 2usize);
    let query = [0.5, -1.0, 1.5, 0.25]; // [1, 2 queries, q]
    let keys = [0.1, 0.2, -0.3, -0.4, 0.5, 0.6, 0.7, -0.8, 0.9]; // [1, 3 keys, k]
    let w_q = [0.3, -0.2, 0.8, 0.5]; // [q, a]
    let w_k = [0.1, 0.4, -0.6, 0.2, 0.9, -0.3]; // [k, a]
    let bias = [0.05, -0.1];
    let v = [1.2, -0.7];
    let w = [0.2, -0.5, 0.7, 0.1, -0.3, 0.4]; // general: [k, q], score q · (k W)
    let p2 = |x: &[f64], shape: [usize; 2]| {
        Some(Param::from_tensor(crate::recurrent::host::<B, 2>(
            x, shape, dev,
        )))
    };
    let p1 = |x: &[f64]| {
        Some(Param::from_tensor(crate::recurrent::host::<B, 1>(
            x,
            [x.len()],
            dev,
        )))
    };
    let additive = |t: usize, s: usize, with_bias: bool| -> f64 {
        (0..a)
            .map(|j| {
                let mut h = if with_bias { bias[j] } else { 0.0 };
                h += (0..q)
                    .map(|i| query[t * q + i] * w_q[i * a + j])
                    .sum::<f64>();
                h += (0..k)
                    .map(|i| keys[s * k + i] * w_k[i * a + j])
                    .sum::<f64>();
                v[j] * h.tanh()
            })
            .sum()
    };
    let general = |t: usize, s: usize| -> f64 {
        (0..q)
            .map(|j| query[t * q + j] * (0..k).map(|i| keys[s * k + i] * w[i * q + j]).sum::<f64>())
            .sum()
    };
    for score in [
        AttentionScore::Additive,
        AttentionScore::Concat,
        AttentionScore::General,
    ] {
        for scaled in [false, true] {
            if scaled && score != AttentionScore::General {
                continue;
            }
            let params = match score {
                AttentionScore::General => AttentionParams {
                    key_weight: p2(&w, [k, q]),
                    ..Default::default()
                },
                _ => AttentionParams {
                    query_weight: p2(&w_q, [q, a]),
                    query_bias: if score == AttentionScore::Additive {
                        p1(&bias)
                    } else {
                        None
                    },
                    key_weight: p2(&w_k, [k, a]),
                    v: p1(&v),
                },
            };
            let attention = Attention::from_params(score, scaled, q, k, params).unwrap();
            let key_tensor = crate::recurrent::host::<B, 3>(&keys, [1, 3, k], dev);
            let memory = attention.memory(key_tensor.clone(), key_tensor);
            let got = attention.scores(
                crate::recurrent::host::<B, 3>(&query, [1, 2, q], dev),
                &memory,
            );
            let scale = if scaled { 1.0 / (q as f64).sqrt() } else { 1.0 };
            let want: Vec<f64> = (0..2)
                .flat_map(|t| (0..3).map(move |s| (t, s)))
                .map(|(t, s)| match score {
                    AttentionScore::General => scale * general(t, s),
                    _ => additive(t, s, score == AttentionScore::Additive),
                })
                .collect();
            rensa_testkit::assert_slices_close(
                &to_f64_vec(got),
                &want,
                tol,
                &format!("{score:?} scores (scaled: {scaled})"),
            );
        }
    }
}

#[test]
fn ndarray() {
    let device = Default::default();
    type B = rensa_testkit::TestBackend;
    keras_goldens::<B>(&device, Tolerance::F32);
    weights_and_masks::<B>(&device, Tolerance::F32);
    per_query_mask::<B>(&device);
    step_matches_sequence::<B>(&device, Tolerance::F32);
    fused_matches_plain::<rensa_testkit::TestAutodiff>(&device, Tolerance::F32);
    hand_computed_scores::<B>(&device, Tolerance::F32);
}

#[test]
fn wgpu() {
    let Some(device) = rensa_testkit::wgpu_device_or_skip() else {
        return;
    };
    type B = rensa_testkit::WgpuBackend;
    keras_goldens::<B>(&device, Tolerance::F32_LOOSE);
    weights_and_masks::<B>(&device, Tolerance::F32_LOOSE);
    fused_matches_plain::<rensa_testkit::WgpuAutodiff>(&device, Tolerance::F32_LOOSE);
}
