//! Finite-difference checks in f64: the explicit activation derivatives (also against burn's
//! autodiff), and the gradients of every recurrent cell, stacked, bidirectional and masked (with
//! respect to the input and every weight).

use burn::tensor::{Tensor, TensorData};
use rensa_nn::activation::{self, Activation};
use rensa_nn::recurrent::{
    GruCell, LstmCell, MergeMode, Recurrent, RecurrentCell, RnnCell, SequenceInput,
};
use rensa_testkit::{
    F64Autodiff, F64Backend, GradCheck, Tolerance, assert_slices_close, f64_device, seeded_normal,
    to_f64_vec,
};

type AD = F64Autodiff;

fn tensor1(values: Vec<f64>) -> Tensor<F64Backend, 1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), &f64_device())
}

/// Points away from the kinks of ReLU.
const POINTS: [f64; 9] = [-3.1, -1.2, -0.4, -0.05, 0.07, 0.3, 0.9, 2.2, 4.5];

/// `df(x)` against central differences of `f`.
fn against_finite_differences(
    f: impl Fn(Tensor<F64Backend, 1>) -> Tensor<F64Backend, 1>,
    df: impl Fn(Tensor<F64Backend, 1>) -> Tensor<F64Backend, 1>,
    what: &str,
) {
    let eps = 1e-6;
    let shifted = |d: f64| to_f64_vec(f(tensor1(POINTS.iter().map(|x| x + d).collect())));
    let numeric: Vec<f64> = shifted(eps)
        .iter()
        .zip(shifted(-eps))
        .map(|(p, m)| (p - m) / (2.0 * eps))
        .collect();
    let analytic = to_f64_vec(df(tensor1(POINTS.to_vec())));
    assert_slices_close(&analytic, &numeric, Tolerance::new(1e-8, 1e-6), what);
}

/// `df(x)` against burn's autodiff of `f`.
fn against_autodiff(
    f: impl Fn(Tensor<AD, 1>) -> Tensor<AD, 1>,
    df: impl Fn(Tensor<F64Backend, 1>) -> Tensor<F64Backend, 1>,
    what: &str,
) {
    let x = Tensor::<AD, 1>::from_data(
        TensorData::new(POINTS.to_vec(), [POINTS.len()]),
        &f64_device(),
    )
    .require_grad();
    let autodiff = to_f64_vec(x.grad(&f(x.clone()).sum().backward()).unwrap());
    let analytic = to_f64_vec(df(tensor1(POINTS.to_vec())));
    assert_slices_close(&analytic, &autodiff, Tolerance::new(1e-10, 1e-10), what);
}

/// `df` against central differences of `f` and against burn's autodiff of `f`, at points away
/// from the kinks (each expression is typed once per backend).
macro_rules! check_derivative {
    ($f:expr, $df:expr, $what:expr) => {
        against_finite_differences($f, $df, $what);
        against_autodiff($f, $df, $what);
    };
}

#[test]
fn activation_derivatives_match_finite_differences_and_autodiff() {
    use activation::*;
    check_derivative!(sigmoid, d_sigmoid, "d_sigmoid");
    check_derivative!(tanh, d_tanh, "d_tanh (1/cosh^2)");
    check_derivative!(tanh, d_tanh_exp, "d_tanh (4/(e^x+e^-x)^2)");
    check_derivative!(relu, d_relu, "d_relu");
    check_derivative!(relu, d_relu_subgradient, "d_relu_subgradient");
    // Slopes that f32 holds exactly: burn's leaky ReLU keeps its slope as an f32, so with 0.01
    // its autodiff differs from the exact derivative by 2e-10 even on an f64 backend.
    check_derivative!(|x| lrelu(x, 0.25), |x| d_lrelu(x, 0.25), "d_lrelu");
    check_derivative!(
        |x| lrelu(x, 0.125),
        |x| d_lrelu_subgradient(x, 0.125),
        "d_lrelu_subgradient"
    );
    for a in [
        Activation::Tanh,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::LeakyRelu { alpha: 0.0625 },
    ] {
        check_derivative!(
            |x| a.forward(x),
            |x| a.derivative(x),
            &format!("{a:?}.derivative")
        );
        check_derivative!(
            |x| a.forward(x),
            |x| a.derivative_from_output(a.forward(x)),
            &format!("{a:?}.derivative_from_output")
        );
    }
}

#[test]
fn softmax_jvp_matches_finite_differences() {
    // L(x) = sum(softmax(x) * w): dL/dx = softmax_jvp(softmax(x), w).
    let (x, w) = (seeded_normal(8, 5, 1.0), seeded_normal(9, 5, 1.0));
    let loss = |x: &[f64]| {
        (activation::softmax(tensor1(x.to_vec()), 0) * tensor1(w.clone()))
            .sum()
            .into_scalar()
    };
    let eps = 1e-6;
    let numeric: Vec<f64> = (0..x.len())
        .map(|i| {
            let (mut p, mut m) = (x.clone(), x.clone());
            p[i] += eps;
            m[i] -= eps;
            (loss(&p) - loss(&m)) / (2.0 * eps)
        })
        .collect();
    let y = activation::softmax(tensor1(x.clone()), 0);
    let analytic = to_f64_vec(activation::softmax_jvp(y, tensor1(w), 0));
    assert_slices_close(
        &analytic,
        &numeric,
        Tolerance::new(1e-9, 1e-6),
        "softmax_jvp",
    );
}

/// A layer shape to check.
struct Spec {
    batch: usize,
    time: usize,
    input: usize,
    hidden: usize,
    layers: usize,
    bidirectional: bool,
    merge: MergeMode,
    lengths: Option<Vec<usize>>,
}

impl Spec {
    fn small(layers: usize, bidirectional: bool, lengths: Option<Vec<usize>>) -> Self {
        Spec {
            batch: 3,
            time: 4,
            input: 3,
            hidden: 3,
            layers,
            bidirectional,
            merge: MergeMode::Concat,
            lengths,
        }
    }
}

/// Gradients of `sum(out ⊙ R) + sum(h_n ⊙ R') (+ sum(c_n ⊙ R''))` with respect to the input and
/// every weight and bias, against finite differences.
fn check_layer<C: RecurrentCell<AD>>(
    spec: Spec,
    make: impl Fn(Tensor<AD, 2>, Tensor<AD, 2>, Tensor<AD, 1>, Tensor<AD, 1>) -> C,
    what: &str,
) {
    let dev = f64_device();
    let (b, t, h, g) = (spec.batch, spec.time, spec.hidden, C::GATES);
    let dirs = if spec.bidirectional { 2 } else { 1 };
    let merged = if spec.bidirectional {
        spec.merge.output_size(h)
    } else {
        h
    };
    let layer_input = |layer: usize| if layer == 0 { spec.input } else { merged };
    let n_cells = spec.layers * dirs;

    let mut inputs = vec![seeded_normal(1, b * t * spec.input, 1.0)];
    for k in 0..n_cells {
        let seed = 10 * (k as u64 + 1);
        inputs.push(seeded_normal(seed, layer_input(k / dirs) * g * h, 0.5));
        inputs.push(seeded_normal(seed + 1, h * g * h, 0.5));
        inputs.push(seeded_normal(seed + 2, g * h, 0.2));
        inputs.push(seeded_normal(seed + 3, g * h, 0.2));
    }
    let r_out = seeded_normal(100, b * t * merged, 1.0);
    let r_h = seeded_normal(101, n_cells * b * h, 1.0);
    let r_c = seeded_normal(102, n_cells * b * h, 1.0);
    let weigh = |values: &Vec<f64>, shape: [usize; 3]| {
        Tensor::<AD, 3>::from_data(TensorData::new(values.clone(), shape), &dev)
    };

    let check = GradCheck {
        tol: Tolerance::new(1e-7, 1e-5),
        ..GradCheck::default()
    };
    check.check(&inputs, |xs| {
        let x = xs[0].clone().reshape([b, t, spec.input]);
        let cells = (0..n_cells)
            .map(|k| {
                let w = &xs[1 + 4 * k..5 + 4 * k];
                make(
                    w[0].clone().reshape([layer_input(k / dirs), g * h]),
                    w[1].clone().reshape([h, g * h]),
                    w[2].clone(),
                    w[3].clone(),
                )
            })
            .collect();
        let layer = Recurrent::from_cells(cells, spec.bidirectional, spec.merge, 0.0).unwrap();
        let mut input = SequenceInput::new(x);
        if let Some(l) = &spec.lengths {
            input = input.with_lengths(l);
        }
        let out = layer.forward(input);
        let mut loss = (out.output * weigh(&r_out, [b, t, merged])).sum()
            + (out.state.hidden * weigh(&r_h, [n_cells, b, h])).sum();
        if let Some(c) = out.state.cell {
            loss = loss + (c * weigh(&r_c, [n_cells, b, h])).sum();
        }
        loss
    });
    eprintln!("{what}: gradients match finite differences");
}

fn lstm(a: Tensor<AD, 2>, b: Tensor<AD, 2>, c: Tensor<AD, 1>, d: Tensor<AD, 1>) -> LstmCell<AD> {
    LstmCell::from_weights(a, b, Some(c), Some(d)).unwrap()
}

fn gru(
    reset_after: bool,
) -> impl Fn(Tensor<AD, 2>, Tensor<AD, 2>, Tensor<AD, 1>, Tensor<AD, 1>) -> GruCell<AD> {
    move |a, b, c, d| GruCell::from_weights(a, b, Some(c), Some(d), reset_after).unwrap()
}

fn rnn(
    act: Activation,
) -> impl Fn(Tensor<AD, 2>, Tensor<AD, 2>, Tensor<AD, 1>, Tensor<AD, 1>) -> RnnCell<AD> {
    move |a, b, c, d| RnnCell::from_weights(a, b, Some(c), Some(d), act).unwrap()
}

#[test]
fn lstm_gradients() {
    check_layer(Spec::small(1, false, None), lstm, "lstm");
    check_layer(
        Spec::small(2, true, Some(vec![4, 2, 1])),
        lstm,
        "lstm stacked bidirectional masked",
    );
}

#[test]
fn gru_gradients() {
    check_layer(Spec::small(1, false, None), gru(true), "gru reset-after");
    check_layer(Spec::small(1, false, None), gru(false), "gru reset-before");
    check_layer(
        Spec::small(2, true, Some(vec![1, 4, 3])),
        gru(true),
        "gru stacked bidirectional masked",
    );
    let mut sum = Spec::small(2, true, Some(vec![2, 4, 3]));
    sum.merge = MergeMode::Sum;
    check_layer(
        sum,
        gru(false),
        "gru reset-before stacked bidirectional masked, merge sum",
    );
}

#[test]
fn rnn_gradients() {
    check_layer(
        Spec::small(1, false, None),
        rnn(Activation::Tanh),
        "rnn tanh",
    );
    check_layer(
        Spec::small(1, false, None),
        rnn(Activation::Sigmoid),
        "rnn sigmoid",
    );
    check_layer(
        Spec::small(2, true, Some(vec![4, 3, 2])),
        rnn(Activation::Tanh),
        "rnn stacked bidirectional masked",
    );
    let mut mul = Spec::small(1, true, None);
    mul.merge = MergeMode::Mul;
    check_layer(mul, rnn(Activation::Tanh), "rnn bidirectional merge mul");
}
