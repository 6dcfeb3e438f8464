//! The recurrent layers against references, on ndarray and on wgpu:
//! burn-nn 0.21 on copied weights (outputs, final states, and the gradients of the input, every
//! weight and every bias, with losses on the outputs and the final states), numpy goldens
//! (`assets/golden/recurrent.py`), the step API against the sequence layer, masking, and the
//! autodiff `unstack_time` node. Bad-input handling at the end (ndarray only).
//!
//! f64 finite-difference checks live in `tests/f64/gradcheck.rs` (a process of their own: see
//! `rensa_testkit::f64_device`).

use burn::module::Param;
use burn::nn::{GateController, Linear};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use rensa_nn::activation::Activation;
use rensa_nn::recurrent::{
    Differentiation, GateWeights, GruCell, GruConfig, LstmCell, LstmConfig, MergeMode, Recurrent,
    RecurrentBackend, RecurrentCell, RecurrentConfig, RnnCell, RnnConfig, SequenceInput,
};
use rensa_testkit::{Tolerance, assert_close, normal_tensor};
use serde::Deserialize;

/// Gate weights of a burn-nn layer, fused in the given gate order:
/// `weight_ih [I, G·H]`, `weight_hh [H, G·H]`, `bias_ih`, `bias_hh` (detached copies).
fn fuse<B: Backend>(
    gates: &[&GateController<B>],
) -> (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 1>, Tensor<B, 1>) {
    let cat2 = |f: &dyn Fn(&GateController<B>) -> Tensor<B, 2>| {
        Tensor::cat(gates.iter().map(|g| f(g)).collect(), 1).detach()
    };
    let cat1 = |f: &dyn Fn(&GateController<B>) -> Tensor<B, 1>| {
        Tensor::cat(gates.iter().map(|g| f(g)).collect(), 0).detach()
    };
    (
        cat2(&|g| g.input_transform.weight.val()),
        cat2(&|g| g.hidden_transform.weight.val()),
        cat1(&|g| g.input_transform.bias.as_ref().unwrap().val()),
        cat1(&|g| g.hidden_transform.bias.as_ref().unwrap().val()),
    )
}

/// Every weight gradient of one of our cells against those burn-nn computed for the same gates
/// (fused like [`fuse`]): `weight_ih`, `weight_hh`, `bias_ih` (the gates' input biases) and
/// `bias_hh` (their hidden biases, which differ from the input ones where a gate multiplies its
/// hidden part, as the reset-after GRU's candidate does).
fn assert_weight_grads<B: AutodiffBackend + RecurrentBackend>(
    w: &GateWeights<B>,
    gates: &[&GateController<B>],
    g_ours: &B::Gradients,
    g_nn: &B::Gradients,
    tol: Tolerance,
    what: &str,
) {
    let cat2 = |f: fn(&GateController<B>) -> &Linear<B>| {
        Tensor::cat(
            gates
                .iter()
                .map(|c| {
                    f(c).weight
                        .grad(g_nn)
                        .expect("burn-nn weight has a gradient")
                })
                .collect(),
            1,
        )
    };
    let cat1 = |f: fn(&GateController<B>) -> &Linear<B>| {
        Tensor::cat(
            gates
                .iter()
                .map(|c| {
                    let bias = f(c).bias.as_ref().expect("burn-nn gates have biases");
                    bias.grad(g_nn).expect("burn-nn bias has a gradient")
                })
                .collect(),
            0,
        )
    };
    fn input<B: Backend>(c: &GateController<B>) -> &Linear<B> {
        &c.input_transform
    }
    fn hidden<B: Backend>(c: &GateController<B>) -> &Linear<B> {
        &c.hidden_transform
    }
    let ours2 = |p: &Param<Tensor<B, 2>>| p.grad(g_ours).expect("our weight has a gradient");
    let ours1 = |p: &Option<Param<Tensor<B, 1>>>| {
        let p = p.as_ref().expect("our cell has the bias");
        p.grad(g_ours).expect("our bias has a gradient")
    };
    let name = |n: &str| format!("{what} d/d{n}");
    assert_close(
        ours2(&w.weight_ih),
        cat2(input::<B>),
        tol,
        &name("weight_ih"),
    );
    assert_close(
        ours2(&w.weight_hh),
        cat2(hidden::<B>),
        tol,
        &name("weight_hh"),
    );
    assert_close(ours1(&w.bias_ih), cat1(input::<B>), tol, &name("bias_ih"));
    assert_close(ours1(&w.bias_hh), cat1(hidden::<B>), tol, &name("bias_hh"));
}

fn single<B: RecurrentBackend, C: RecurrentCell<B>>(
    cells: Vec<C>,
    bidirectional: bool,
) -> Recurrent<B, C> {
    Recurrent::from_cells(cells, bidirectional, MergeMode::Concat, 0.0).unwrap()
}

/// A random weighting of an output, so that a loss depends on every element differently.
fn weighting<B: Backend, const D: usize>(seed: u64, like: &Tensor<B, D>) -> Tensor<B, D> {
    normal_tensor(seed, like.dims(), 1.0, &like.device())
}

/// Fixed random weightings (seeds 7, 8, 9) of an LSTM's output and final hidden and cell
/// states, so that one loss, `Σ y·r + Σ h·rh + Σ c·rc`, sends a gradient through all three.
struct LstmLoss<B: Backend, const D: usize>(Tensor<B, 3>, Tensor<B, D>, Tensor<B, D>);

impl<B: Backend, const D: usize> LstmLoss<B, D> {
    fn like(y: &Tensor<B, 3>, h: &Tensor<B, D>, c: &Tensor<B, D>) -> Self {
        Self(weighting(7, y), weighting(8, h), weighting(9, c))
    }

    fn loss(&self, y: Tensor<B, 3>, h: Tensor<B, D>, c: Tensor<B, D>) -> Tensor<B, 1> {
        (y * self.0.clone()).sum() + (h * self.1.clone()).sum() + (c * self.2.clone()).sum()
    }
}

/// Backpropagates burn-nn's and our loss and checks that the input gradients agree; returns the
/// gradients (burn-nn's first) for the weight checks.
fn backward_both<B: AutodiffBackend>(
    (x_nn, loss_nn): (&Tensor<B, 3>, Tensor<B, 1>),
    (x_ours, loss_ours): (&Tensor<B, 3>, Tensor<B, 1>),
    tol: Tolerance,
    what: &str,
) -> (B::Gradients, B::Gradients) {
    let (g_nn, g_ours) = (loss_nn.backward(), loss_ours.backward());
    let (d_nn, d_ours) = (x_nn.grad(&g_nn).unwrap(), x_ours.grad(&g_ours).unwrap());
    assert_close(d_ours, d_nn, tol, &format!("{what} d/dx"));
    (g_nn, g_ours)
}

const SIZES: (usize, usize, usize, usize) = (3, 5, 4, 6); // batch, time, input, hidden

/// One random input `[b, t, i]` of [`SIZES`] (from `seed`) as two leaves that track gradients:
/// burn-nn's and ours.
fn twin_inputs<B: AutodiffBackend>(seed: u64, dev: &B::Device) -> (Tensor<B, 3>, Tensor<B, 3>) {
    let (b, t, i, _) = SIZES;
    let x = normal_tensor::<B, 3>(seed, [b, t, i], 1.0, dev);
    (x.clone().require_grad(), x.require_grad())
}

fn parity_lstm<B: AutodiffBackend + RecurrentBackend>(dev: &B::Device, tol: Tolerance) {
    let (b, _, i, h) = SIZES;
    let nn = burn::nn::LstmConfig::new(i, h, true).init::<B>(dev);
    let gates = [
        &nn.input_gate,
        &nn.forget_gate,
        &nn.cell_gate,
        &nn.output_gate,
    ];
    let (wi, wh, bi, bh) = fuse(&gates);
    let ours = single(
        vec![LstmCell::from_weights(wi, wh, Some(bi), Some(bh)).unwrap()],
        false,
    );

    let (x_nn, x_ours) = twin_inputs::<B>(1, dev);
    let (y_nn, s_nn) = nn.forward(x_nn.clone(), None);
    let out = ours.forward(SequenceInput::new(x_ours.clone()));
    let (h_ours, c_ours) = (
        out.state.hidden.clone().reshape([b, h]),
        out.state.cell.clone().unwrap().reshape([b, h]),
    );
    assert_close(out.output.clone(), y_nn.clone(), tol, "lstm output");
    assert_close(
        h_ours.clone(),
        s_nn.hidden.clone(),
        tol,
        "lstm final hidden",
    );
    assert_close(c_ours.clone(), s_nn.cell.clone(), tol, "lstm final cell");

    let w = LstmLoss::like(&y_nn, &s_nn.hidden, &s_nn.cell);
    let (g_nn, g_ours) = backward_both(
        (&x_nn, w.loss(y_nn, s_nn.hidden, s_nn.cell)),
        (&x_ours, w.loss(out.output, h_ours, c_ours)),
        tol,
        "lstm",
    );
    assert_weight_grads(&ours.cells[0].weights, &gates, &g_ours, &g_nn, tol, "lstm");
}

fn parity_gru<B: AutodiffBackend + RecurrentBackend>(
    dev: &B::Device,
    tol: Tolerance,
    reset_after: bool,
) {
    let (b, t, i, h) = SIZES;
    let what = if reset_after {
        "gru (reset after)"
    } else {
        "gru (reset before)"
    };
    let nn = burn::nn::GruConfig::new(i, h, true)
        .with_reset_after(reset_after)
        .init::<B>(dev);
    let gates = [&nn.reset_gate, &nn.update_gate, &nn.new_gate];
    let (wi, wh, bi, bh) = fuse(&gates);
    let ours = single(
        vec![GruCell::from_weights(wi, wh, Some(bi), Some(bh), reset_after).unwrap()],
        false,
    );

    let (x_nn, x_ours) = twin_inputs::<B>(2, dev);
    let y_nn = nn.forward(x_nn.clone(), None);
    let out = ours.forward(SequenceInput::new(x_ours.clone()));
    assert_close(
        out.output.clone(),
        y_nn.clone(),
        tol,
        &format!("{what} output"),
    );
    let last = y_nn.clone().narrow(1, t - 1, 1).reshape([b, h]);
    assert_close(
        out.state.hidden.clone().reshape([b, h]),
        last,
        tol,
        &format!("{what} final state"),
    );

    let r = weighting(7, &y_nn);
    let (g_nn, g_ours) = backward_both(
        (&x_nn, (y_nn * r.clone()).sum()),
        (&x_ours, (out.output * r).sum()),
        tol,
        what,
    );
    assert_weight_grads(&ours.cells[0].weights, &gates, &g_ours, &g_nn, tol, what);
}

fn parity_rnn<B: AutodiffBackend + RecurrentBackend>(dev: &B::Device, tol: Tolerance) {
    let (b, _, i, h) = SIZES;
    let nn = burn::nn::RnnConfig::new(i, h, true).init::<B>(dev);
    let (wi, wh, bi, bh) = fuse(&[&nn.gate]);
    let ours = single(
        vec![RnnCell::from_weights(wi, wh, Some(bi), Some(bh), Activation::Tanh).unwrap()],
        false,
    );

    let (x_nn, x_ours) = twin_inputs::<B>(3, dev);
    let (y_nn, s_nn) = nn.forward(x_nn.clone(), None);
    let out = ours.forward(SequenceInput::new(x_ours.clone()));
    assert_close(out.output.clone(), y_nn.clone(), tol, "rnn output");
    assert_close(
        out.state.hidden.clone().reshape([b, h]),
        s_nn.hidden,
        tol,
        "rnn final state",
    );
    let r = weighting(7, &y_nn);
    let (g_nn, g_ours) = backward_both(
        (&x_nn, (y_nn * r.clone()).sum()),
        (&x_ours, (out.output * r).sum()),
        tol,
        "rnn",
    );
    assert_weight_grads(
        &ours.cells[0].weights,
        &[&nn.gate],
        &g_ours,
        &g_nn,
        tol,
        "rnn",
    );
}

fn parity_bilstm<B: AutodiffBackend + RecurrentBackend>(dev: &B::Device, tol: Tolerance) {
    let (_, _, i, h) = SIZES;
    let nn = burn::nn::BiLstmConfig::new(i, h, true).init::<B>(dev);
    let cell = |l: &burn::nn::Lstm<B>| {
        let (wi, wh, bi, bh) = fuse(&[&l.input_gate, &l.forget_gate, &l.cell_gate, &l.output_gate]);
        LstmCell::from_weights(wi, wh, Some(bi), Some(bh)).unwrap()
    };
    let ours = single(vec![cell(&nn.forward), cell(&nn.reverse)], true);

    let (x_nn, x_ours) = twin_inputs::<B>(4, dev);
    let (y_nn, s_nn) = nn.forward(x_nn.clone(), None);
    let out = ours.forward(SequenceInput::new(x_ours.clone()));
    assert_close(out.output.clone(), y_nn.clone(), tol, "bilstm output");
    assert_close(
        out.state.hidden.clone(),
        s_nn.hidden.clone(),
        tol,
        "bilstm final hidden",
    );
    assert_close(
        out.state.cell.clone().unwrap(),
        s_nn.cell.clone(),
        tol,
        "bilstm final cell",
    );
    let w = LstmLoss::like(&y_nn, &s_nn.hidden, &s_nn.cell);
    let loss_ours = w.loss(out.output, out.state.hidden, out.state.cell.unwrap());
    let (g_nn, g_ours) = backward_both(
        (&x_nn, w.loss(y_nn, s_nn.hidden, s_nn.cell)),
        (&x_ours, loss_ours),
        tol,
        "bilstm",
    );
    for (d, l) in [&nn.forward, &nn.reverse].into_iter().enumerate() {
        let gates = [&l.input_gate, &l.forget_gate, &l.cell_gate, &l.output_gate];
        let what = format!("bilstm dir {d}");
        assert_weight_grads(&ours.cells[d].weights, &gates, &g_ours, &g_nn, tol, &what);
    }
}

#[derive(Deserialize)]
struct GoldenCase {
    name: String,
    cell: String,
    batch: usize,
    time: usize,
    input: usize,
    hidden: usize,
    bidirectional: bool,
    reset_after: bool,
    activation: String,
    lengths: Option<Vec<usize>>,
    x: Vec<f64>,
    directions: Vec<GoldenWeights>,
    output: Vec<f64>,
    h_n: Vec<f64>,
    c_n: Option<Vec<f64>>,
}

#[derive(Deserialize)]
struct GoldenWeights {
    w_ih: Vec<f64>,
    w_hh: Vec<f64>,
    b_ih: Vec<f64>,
    b_hh: Vec<f64>,
}

pub(crate) fn host<B: Backend, const D: usize>(
    values: &[f64],
    shape: [usize; D],
    dev: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), shape).convert::<B::FloatElem>(),
        dev,
    )
}

fn golden_case<B: RecurrentBackend, C: RecurrentCell<B>>(
    case: &GoldenCase,
    dev: &B::Device,
    tol: Tolerance,
    make: impl Fn(Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 1>, Tensor<B, 1>) -> C,
) {
    let gh = C::GATES * case.hidden;
    let cells = case
        .directions
        .iter()
        .map(|w| {
            make(
                host(&w.w_ih, [case.input, gh], dev),
                host(&w.w_hh, [case.hidden, gh], dev),
                host(&w.b_ih, [gh], dev),
                host(&w.b_hh, [gh], dev),
            )
        })
        .collect();
    let layer = single(cells, case.bidirectional);
    let mut input = SequenceInput::new(host(&case.x, [case.batch, case.time, case.input], dev));
    if let Some(l) = &case.lengths {
        input = input.with_lengths(l);
    }
    let out = layer.forward(input);
    let dirs = case.directions.len();
    let what = |part: &str| format!("golden {}: {part}", case.name);
    assert_close(
        out.output,
        host::<B, 3>(
            &case.output,
            [case.batch, case.time, dirs * case.hidden],
            dev,
        ),
        tol,
        &what("output"),
    );
    assert_close(
        out.state.hidden,
        host::<B, 3>(&case.h_n, [dirs, case.batch, case.hidden], dev),
        tol,
        &what("h_n"),
    );
    if let Some(c) = &case.c_n {
        assert_close(
            out.state.cell.unwrap(),
            host::<B, 3>(c, [dirs, case.batch, case.hidden], dev),
            tol,
            &what("c_n"),
        );
    }
}

fn golden<B: RecurrentBackend>(dev: &B::Device, tol: Tolerance) {
    let cases: Vec<GoldenCase> =
        crate::golden_cases(include_str!("../../../../assets/golden/recurrent.json"));
    assert!(cases.len() >= 9);
    for case in &cases {
        match case.cell.as_str() {
            "lstm" => golden_case::<B, _>(case, dev, tol, |a, b, c, d| {
                LstmCell::from_weights(a, b, Some(c), Some(d)).unwrap()
            }),
            "gru" => golden_case::<B, _>(case, dev, tol, |a, b, c, d| {
                GruCell::from_weights(a, b, Some(c), Some(d), case.reset_after).unwrap()
            }),
            "rnn" => {
                let act = match case.activation.as_str() {
                    "tanh" => Activation::Tanh,
                    "relu" => Activation::Relu,
                    "sigmoid" => Activation::Sigmoid,
                    other => panic!("unknown activation {other}"),
                };
                golden_case::<B, _>(case, dev, tol, |a, b, c, d| {
                    RnnCell::from_weights(a, b, Some(c), Some(d), act).unwrap()
                })
            }
            other => panic!("unknown cell {other}"),
        }
    }
}

/// The single-step API reproduces the sequence layer, step by step, for every cell.
fn step_matches_sequence<B: RecurrentBackend>(dev: &B::Device, tol: Tolerance) {
    fn check<B: RecurrentBackend, C: RecurrentCell<B>>(
        cell: C,
        dev: &B::Device,
        tol: Tolerance,
        what: &str,
    ) {
        let (b, t, i, h) = SIZES;
        let x = normal_tensor::<B, 3>(5, [b, t, i], 1.0, dev);
        let mut state = cell.zero_state(b, dev);
        state.hidden = normal_tensor(6, [b, h], 0.5, dev); // a non-zero start
        let (seq, last) = cell.sequence(
            x.clone(),
            state.clone(),
            None,
            false,
            Differentiation::Fused,
        );
        for step in 0..t {
            state = cell.step(x.clone().narrow(1, step, 1).reshape([b, i]), state);
            assert_close(
                state.hidden.clone(),
                seq.clone().narrow(1, step, 1).reshape([b, h]),
                tol,
                &format!("{what} step {step}"),
            );
        }
        assert_close(
            state.hidden,
            last.hidden,
            tol,
            &format!("{what} final hidden"),
        );
        if let (Some(a), Some(b)) = (state.cell, last.cell) {
            assert_close(a, b, tol, &format!("{what} final cell"));
        }
    }
    let (_, _, i, h) = SIZES;
    let lstm = LstmConfig::new(i, h).with_recurrent_bias(true);
    check(lstm.init_cell::<B>(dev).unwrap(), dev, tol, "lstm");
    let gru_after = GruConfig::new(i, h).init_cell::<B>(dev).unwrap();
    check(gru_after, dev, tol, "gru reset-after");
    let gru_before = GruConfig::new(i, h).with_reset_after(false);
    check(
        gru_before.init_cell::<B>(dev).unwrap(),
        dev,
        tol,
        "gru reset-before",
    );
    for act in [Activation::Tanh, Activation::Relu, Activation::Sigmoid] {
        let rnn = RnnConfig::new(i, h)
            .with_activation(act)
            .init_cell::<B>(dev);
        check(rnn.unwrap(), dev, tol, &format!("rnn {act:?}"));
    }

    // The stacked layer's step API against its forward.
    let (b, t, _, _) = SIZES;
    let layer = LstmConfig::new(i, h)
        .with_num_layers(3)
        .init::<B>(dev)
        .unwrap();
    let x = normal_tensor::<B, 3>(7, [b, t, i], 1.0, dev);
    let full = layer.forward(SequenceInput::new(x.clone()));
    let mut state = layer.zero_state(b, dev);
    for step in 0..t {
        let (y, s) = layer.step(x.clone().narrow(1, step, 1).reshape([b, i]), state);
        assert_close(
            y,
            full.output.clone().narrow(1, step, 1).reshape([b, h]),
            tol,
            &format!("stacked step {step}"),
        );
        state = s;
    }
    assert_close(
        state.hidden,
        full.state.hidden,
        tol,
        "stacked step final hidden",
    );
    assert_close(
        state.cell.unwrap(),
        full.state.cell.unwrap(),
        tol,
        "stacked step final cell",
    );
}

/// Padding changes nothing: each sequence of a padded batch gives what it gives alone, outputs
/// past its end are zero and its final states come from its own last step, in both directions
/// and through stacked layers.
fn masking<B: RecurrentBackend>(dev: &B::Device, tol: Tolerance) {
    fn check<B: RecurrentBackend, K: RecurrentConfig>(
        config: K,
        dev: &B::Device,
        tol: Tolerance,
        what: &str,
    ) {
        let layer = config.init_layer::<B>(dev).unwrap();
        let (t, i) = (6, layer.input_size());
        let lengths = [6, 4, 1, 3];
        let b = lengths.len();
        let x = normal_tensor::<B, 3>(8, [b, t, i], 1.0, dev);
        // Garbage in the padding must not leak into anything.
        let out = layer.forward(SequenceInput::new(x.clone()).with_lengths(&lengths));
        let out_size = layer.output_size();
        for (k, &len) in lengths.iter().enumerate() {
            let alone = layer.forward(SequenceInput::new(
                x.clone().narrow(0, k, 1).narrow(1, 0, len),
            ));
            let mine = out.output.clone().narrow(0, k, 1);
            assert_close(
                mine.clone().narrow(1, 0, len),
                alone.output,
                tol,
                &format!("{what}: sequence {k} outputs"),
            );
            if len < t {
                let pad = mine.narrow(1, len, t - len);
                assert_close(
                    pad.clone(),
                    pad.zeros_like(),
                    Tolerance::new(0.0, 0.0),
                    &format!("{what}: sequence {k} padding"),
                );
            }
            assert_close(
                out.state.hidden.clone().narrow(1, k, 1),
                alone.state.hidden,
                tol,
                &format!("{what}: sequence {k} h_n"),
            );
            if let (Some(c), Some(ca)) = (&out.state.cell, alone.state.cell) {
                assert_close(
                    c.clone().narrow(1, k, 1),
                    ca,
                    tol,
                    &format!("{what}: sequence {k} c_n"),
                );
            }
        }
        assert_eq!(out.output.dims(), [b, t, out_size]);
        // Nor non-finite padding: NaN and infinities there give the same outputs and final
        // states (the padding of the run above held finite noise).
        let pad: Vec<bool> = lengths
            .iter()
            .flat_map(|&len| (0..t * i).map(move |k| k / i >= len))
            .collect();
        let pad =
            Tensor::<B, 3, burn::tensor::Bool>::from_data(TensorData::new(pad, [b, t, i]), dev);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let x_bad = x.clone().mask_fill(pad.clone(), bad);
            let got = layer.forward(SequenceInput::new(x_bad).with_lengths(&lengths));
            let exact = Tolerance::new(0.0, 0.0);
            let what = format!("{what}: {bad} in the padding");
            assert_close(got.output, out.output.clone(), exact, &what);
            assert_close(got.state.hidden, out.state.hidden.clone(), exact, &what);
            if let (Some(c), Some(co)) = (got.state.cell, &out.state.cell) {
                assert_close(c, co.clone(), exact, &what);
            }
        }
    }
    let i = 3;
    let bi = |merge| {
        RnnConfig::new(i, 4)
            .with_bidirectional(true)
            .with_merge_mode(merge)
    };
    let bigru = |merge| {
        GruConfig::new(i, 4)
            .with_bidirectional(true)
            .with_merge_mode(merge)
    };
    let bilstm = LstmConfig::new(i, 4).with_bidirectional(true);
    check::<B, _>(bilstm.with_num_layers(2), dev, tol, "bilstm x2");
    check::<B, _>(
        bigru(MergeMode::Sum).with_num_layers(2),
        dev,
        tol,
        "bigru x2 sum",
    );
    let before = bigru(MergeMode::Mul).with_reset_after(false);
    check::<B, _>(before, dev, tol, "bigru reset-before mul");
    check::<B, _>(bi(MergeMode::Mean), dev, tol, "birnn mean");
    check::<B, _>(RnnConfig::new(i, 4).with_num_layers(3), dev, tol, "rnn x3");
}

/// Non-finite padding leaves the gradients finite, on the fused and the plain path: the
/// gradient with respect to the input is the one of a zero-padded input (zero on the padding).
fn nan_padding_gradients<B: AutodiffBackend + RecurrentBackend>(dev: &B::Device, tol: Tolerance) {
    let (t, i) = (5, 3);
    let lengths = [5, 2, 3];
    let b = lengths.len();
    let pad: Vec<bool> = lengths
        .iter()
        .flat_map(|&len| (0..t * i).map(move |k| k / i >= len))
        .collect();
    let pad = Tensor::<B, 3, burn::tensor::Bool>::from_data(TensorData::new(pad, [b, t, i]), dev);
    let clean = normal_tensor::<B, 3>(12, [b, t, i], 1.0, dev).mask_fill(pad.clone(), 0.0);
    for differentiation in [Differentiation::Fused, Differentiation::Plain] {
        let layer = LstmConfig::new(i, 4)
            .with_bidirectional(true)
            .init_layer::<B>(dev)
            .unwrap()
            .with_differentiation(differentiation);
        let grad_of = |x: Tensor<B, 3>| {
            let x = x.require_grad();
            let out = layer.forward(SequenceInput::new(x.clone()).with_lengths(&lengths));
            let loss = out.output.powi_scalar(2).sum() + out.state.hidden.sum();
            x.grad(&loss.backward()).unwrap()
        };
        let expected = grad_of(clean.clone());
        let got = grad_of(clean.clone().mask_fill(pad.clone(), f32::NAN));
        assert_close(
            got,
            expected,
            tol,
            &format!("{differentiation:?}: input gradient"),
        );
    }
}

/// The autodiff `unstack_time` node gives the same steps and the same gradient as slicing,
/// including steps that receive no gradient.
fn unstack<B: AutodiffBackend + RecurrentBackend>(dev: &B::Device) {
    let (b, t, f) = (2, 5, 3);
    let data = normal_tensor::<B, 3>(9, [b, t, f], 1.0, dev);
    let x = data.clone().require_grad();
    let steps = B::unstack_time(x.clone());
    assert_eq!(steps.len(), t);
    for (k, s) in steps.iter().enumerate() {
        assert_close(
            s.clone(),
            data.clone().narrow(1, k, 1).reshape([b, f]),
            Tolerance::new(0.0, 0.0),
            &format!("step {k}"),
        );
    }
    // A loss on steps 1 and 3 only, weighted differently.
    let w1 = normal_tensor::<B, 2>(10, [b, f], 1.0, dev);
    let w3 = normal_tensor::<B, 2>(11, [b, f], 1.0, dev);
    let loss = (steps[1].clone() * w1.clone()).sum()
        + (steps[3].clone() * w3.clone() * steps[3].clone()).sum();
    let grad = x.grad(&loss.backward()).unwrap();
    let x2 = data.clone().require_grad();
    let s1 = x2.clone().narrow(1, 1, 1).reshape([b, f]);
    let s3 = x2.clone().narrow(1, 3, 1).reshape([b, f]);
    let loss2 = (s1 * w1).sum() + (s3.clone() * w3 * s3).sum();
    let expected = x2.grad(&loss2.backward()).unwrap();
    assert_close(grad, expected, Tolerance::F32, "unstack gradient");
    // Untracked input: plain steps, no graph.
    let steps = B::unstack_time(data);
    assert!(!steps[0].is_require_grad());
}

/// One test per entry, each running its check on the suite's device (skipped where the device
/// is missing: wgpu without Vulkan).
macro_rules! device_tests {
    ($($test:ident: |$d:ident, $tol:ident| $check:expr;)*) => {
        $(
            #[test]
            fn $test() {
                if let Some($d) = &device() {
                    let $tol = TOLERANCE;
                    $check;
                }
            }
        )*
    };
}

/// The suite on one backend: `$device` is its device, `None` to skip.
macro_rules! backend_suite {
    ($name:ident, $backend:ty, $device:expr, $tol:expr) => {
        mod $name {
            use super::*;
            type B = $backend;
            const TOLERANCE: Tolerance = $tol;
            fn device() -> Option<burn::tensor::Device<B>> {
                $device
            }
            device_tests! {
                lstm_matches_burn_nn: |d, tol| parity_lstm::<B>(d, tol);
                gru_reset_after_matches_burn_nn: |d, tol| parity_gru::<B>(d, tol, true);
                gru_reset_before_matches_burn_nn: |d, tol| parity_gru::<B>(d, tol, false);
                rnn_matches_burn_nn: |d, tol| parity_rnn::<B>(d, tol);
                bilstm_matches_burn_nn: |d, tol| parity_bilstm::<B>(d, tol);
                matches_numpy_goldens: |d, tol| golden::<B>(d, tol);
                step_api_matches_sequence: |d, tol| step_matches_sequence::<B>(d, tol);
                padding_changes_nothing: |d, tol| masking::<B>(d, tol);
                unstack_node_matches_slicing: |d, _tol| unstack::<B>(d);
                nan_padding_keeps_gradients_finite: |d, tol| nan_padding_gradients::<B>(d, tol);
            }
        }
    };
}

backend_suite!(
    ndarray,
    rensa_testkit::TestAutodiff,
    Some(Default::default()),
    Tolerance::F32
);
backend_suite!(
    wgpu,
    rensa_testkit::WgpuAutodiff,
    rensa_testkit::wgpu_device_or_skip(),
    Tolerance::F32_LOOSE
);
