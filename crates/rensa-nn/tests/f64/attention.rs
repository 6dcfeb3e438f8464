//! Finite-difference checks in f64 of every attention score: the gradients of a loss on the
//! context and the weights with respect to the query, the keys, the values and every parameter,
//! with keys masked by length (one sequence fully masked). The parameters are the checked
//! inputs themselves (`Param::initialized` keeps autodiff's graph to them).

use burn::module::{Param, ParamId};
use burn::tensor::{Tensor, TensorData};
use rensa_nn::attention::{Attention, AttentionParams, AttentionScore};
use rensa_testkit::{F64Autodiff, GradCheck, Tolerance, f64_device, seeded_normal};

type AD = F64Autodiff;

fn check(score: AttentionScore, scaled: bool) {
    let (b, tq, tk, q, k, dv, a) = (3, 2, 4, 3, 5, 2, 4);
    let q = if score == AttentionScore::Dot { k } else { q };
    let dev = f64_device();
    // query, keys, values, then the score's parameters
    let mut inputs = vec![
        seeded_normal(1, b * tq * q, 1.0),
        seeded_normal(2, b * tk * k, 1.0),
        seeded_normal(3, b * tk * dv, 1.0),
    ];
    let shapes: Vec<Vec<usize>> = match score {
        AttentionScore::Dot => vec![],
        AttentionScore::General => vec![vec![k, q]],
        AttentionScore::Additive => vec![vec![q, a], vec![a], vec![k, a], vec![a]],
        AttentionScore::Concat => vec![vec![q, a], vec![k, a], vec![a]],
    };
    for (i, s) in shapes.iter().enumerate() {
        inputs.push(seeded_normal(10 + i as u64, s.iter().product(), 0.5));
    }
    let r_context = seeded_normal(100, b * tq * dv, 1.0);
    let r_weights = seeded_normal(101, b * tq * tk, 1.0);
    let weigh = |v: &Vec<f64>, shape: [usize; 3]| {
        Tensor::<AD, 3>::from_data(TensorData::new(v.clone(), shape), &dev)
    };
    GradCheck {
        tol: Tolerance::new(1e-7, 1e-5),
        ..GradCheck::default()
    }
    .check(&inputs, |xs| {
        let m2 = |x: &Tensor<AD, 1>, s: &[usize]| {
            Some(Param::initialized(
                ParamId::new(),
                x.clone().reshape([s[0], s[1]]),
            ))
        };
        let m1 = |x: &Tensor<AD, 1>| Some(Param::initialized(ParamId::new(), x.clone()));
        let p = &xs[3..];
        let params = match score {
            AttentionScore::Dot => AttentionParams::default(),
            AttentionScore::General => AttentionParams {
                key_weight: m2(&p[0], &shapes[0]),
                ..Default::default()
            },
            AttentionScore::Additive => AttentionParams {
                query_weight: m2(&p[0], &shapes[0]),
                query_bias: m1(&p[1]),
                key_weight: m2(&p[2], &shapes[2]),
                v: m1(&p[3]),
            },
            AttentionScore::Concat => AttentionParams {
                query_weight: m2(&p[0], &shapes[0]),
                query_bias: None,
                key_weight: m2(&p[1], &shapes[1]),
                v: m1(&p[2]),
            },
        };
        let attention = Attention::from_params(score, scaled, q, k, params).unwrap();
        let out = attention.forward(
            xs[0].clone().reshape([b, tq, q]),
            xs[1].clone().reshape([b, tk, k]),
            xs[2].clone().reshape([b, tk, dv]),
            Some(&[4, 2, 0]),
        );
        (out.context * weigh(&r_context, [b, tq, dv])).sum()
            + (out.weights * weigh(&r_weights, [b, tq, tk])).sum()
    });
}

#[test]
fn gradients_of_every_score() {
    for (score, scaled) in [
        (AttentionScore::Additive, false),
        (AttentionScore::Dot, false),
        (AttentionScore::Dot, true),
        (AttentionScore::General, true),
        (AttentionScore::Concat, false),
    ] {
        check(score, scaled);
    }
}
