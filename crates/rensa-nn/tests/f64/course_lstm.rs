//! The course's numpy `LSTM` layer (forward caching the gates, hand-written `backward`) as a
//! golden: `assets/golden/course_lstm.py` unrolls it over five steps in float64 and records the
//! outputs and every gradient. rensa's LSTM must reproduce them on the f64 backend, through the
//! fused autodiff node (whose backward is the same formulas) and through the plain path.

use burn::tensor::{Tensor, TensorData};
use rensa_nn::recurrent::{CellState, Differentiation, LstmCell, RecurrentCell};
use rensa_testkit::{F64Autodiff, Tolerance, assert_slices_close, f64_device, to_f64_vec};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
#[serde(untagged)]
enum Entry {
    Array { shape: Vec<usize>, data: Vec<f64> },
    Text(String),
}

struct Golden(HashMap<String, Entry>);

impl Golden {
    fn load() -> Self {
        let text = include_str!("../../../../assets/golden/course_lstm.json");
        Self(serde_json::from_str(text).expect("course_lstm.json"))
    }

    fn array(&self, name: &str) -> (&[usize], &[f64]) {
        match &self.0[name] {
            Entry::Array { shape, data } => (shape, data),
            Entry::Text(_) => panic!("{name} is not an array"),
        }
    }

    fn tensor<const D: usize>(&self, name: &str) -> Tensor<F64Autodiff, D> {
        let (shape, data) = self.array(name);
        Tensor::from_data(
            TensorData::new(data.to_vec(), shape.to_vec()),
            &f64_device(),
        )
    }
}

/// The course's gate blocks are (f, g, i, o); rensa's (i, f, g, o). Block `k` of rensa's layout
/// is block `COURSE_BLOCK[k]` of the course's.
const COURSE_BLOCK: [usize; 4] = [2, 0, 1, 3];

/// Reorders the last axis of `[rows, 4H]` (or `[4H]`) values, flattened, from the course's gate
/// order to rensa's (`to_rensa`) or back.
fn permute_gates(values: &[f64], width: usize, to_rensa: bool) -> Vec<f64> {
    let h = width / 4;
    let mut out = vec![0.0; values.len()];
    for (row_in, row_out) in values.chunks(width).zip(out.chunks_mut(width)) {
        for (k, &c) in COURSE_BLOCK.iter().enumerate() {
            let (src, dst) = if to_rensa { (c, k) } else { (k, c) };
            row_out[dst * h..(dst + 1) * h].copy_from_slice(&row_in[src * h..(src + 1) * h]);
        }
    }
    out
}

fn gates_tensor<const D: usize>(golden: &Golden, name: &str) -> Tensor<F64Autodiff, D> {
    let (shape, data) = golden.array(name);
    let width = *shape.last().unwrap();
    let data = permute_gates(data, width, true);
    Tensor::from_data(TensorData::new(data, shape.to_vec()), &f64_device())
}

/// Runs rensa's LSTM on the golden's weights and inputs and checks everything the course's
/// layer produced.
fn check(golden: &Golden, path: &str, differentiation: Differentiation) {
    let cell = LstmCell::from_weights(
        gates_tensor::<2>(golden, "Wx"),
        gates_tensor::<2>(golden, "Wh"),
        Some(gates_tensor::<1>(golden, "b")),
        None,
    )
    .unwrap();
    let x = golden.tensor::<3>("x").require_grad();
    let h0 = golden.tensor::<2>("h0").require_grad();
    let c0 = golden.tensor::<2>("c0").require_grad();
    let state = CellState {
        hidden: h0.clone(),
        cell: Some(c0.clone()),
    };
    let (out, last) = cell.sequence(x.clone(), state, None, false, differentiation);
    let c_last = last.cell.expect("an LSTM has a cell state");
    // The loss whose gradients the course's backward received: Σ out·dY + h_T·dh + c_T·dc.
    let loss = (out.clone() * golden.tensor::<3>("d_out")).sum()
        + (last.hidden.clone() * golden.tensor::<2>("d_h_last")).sum()
        + (c_last.clone() * golden.tensor::<2>("d_c_last")).sum();
    let grads = loss.backward();

    let tol = Tolerance::F64;
    let same = |actual: Vec<f64>, name: &str| {
        assert_slices_close(
            &actual,
            golden.array(name).1,
            tol,
            &format!("{path}: {name}"),
        );
    };
    let same_gates = |actual: Vec<f64>, name: &str| {
        let width = *golden.array(name).0.last().unwrap();
        same(permute_gates(&actual, width, false), name);
    };
    same(to_f64_vec(out), "out");
    same(to_f64_vec(last.hidden), "h_last");
    same(to_f64_vec(c_last), "c_last");
    same(to_f64_vec(x.grad(&grads).unwrap()), "dx");
    same(to_f64_vec(h0.grad(&grads).unwrap()), "dh0");
    same(to_f64_vec(c0.grad(&grads).unwrap()), "dc0");
    let w = &cell.weights;
    same_gates(to_f64_vec(w.weight_ih.grad(&grads).unwrap()), "dWx");
    same_gates(to_f64_vec(w.weight_hh.grad(&grads).unwrap()), "dWh");
    let db = w
        .bias_ih
        .as_ref()
        .expect("the course's b")
        .grad(&grads)
        .unwrap();
    same_gates(to_f64_vec(db), "db");
}

#[test]
fn rensa_lstm_reproduces_the_course_lstm_backward() {
    let golden = Golden::load();
    match &golden.0["gate_order"] {
        Entry::Text(order) => assert_eq!(order, "f, g, i, o"),
        Entry::Array { .. } => panic!("gate_order is not text"),
    }
    check(&golden, "fused node", Differentiation::Fused);
    check(&golden, "plain path", Differentiation::Plain);
}

#[test]
fn gate_permutation_round_trips() {
    let values: Vec<f64> = (0..16).map(f64::from).collect(); // two rows of 4 gates × H = 2
    let rensa = permute_gates(&values, 8, true);
    assert_eq!(&rensa[..8], &[4.0, 5.0, 0.0, 1.0, 2.0, 3.0, 6.0, 7.0]); // i, f, g, o
    assert_eq!(permute_gates(&rensa, 8, false), values);
}
