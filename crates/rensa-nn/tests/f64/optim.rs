//! The fused Adam step in f64: ndarray's native loop against burn's tensor operations (the
//! scalars converted from f32 as burn converts them).

use burn::tensor::{Tensor, TensorData};
use rensa_nn::recurrent::{AdamStep, RecurrentBackend, adam_step_reference};
use rensa_testkit::{F64Backend, f64_device, seeded_normal};

#[test]
fn native_step_matches_the_reference_in_f64() {
    let dev = f64_device();
    let (rows, cols) = (300, 170);
    let tensor = |seed: u64, scale: f64, abs: bool| {
        let mut v = seeded_normal(seed, rows * cols, scale);
        if abs {
            v.iter_mut().for_each(|x| *x = x.abs());
        }
        Tensor::<F64Backend, 2>::from_data(TensorData::new(v, [rows, cols]), &dev)
    };
    for (time, weight_decay) in [(1, None), (40, Some(1e-3))] {
        let step = AdamStep {
            lr: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            weight_decay,
            time,
        };
        let inputs = || {
            (
                tensor(1, 0.3, false),
                tensor(2, 1e-2, false),
                tensor(3, 1e-3, false),
                tensor(4, 1e-5, true),
            )
        };
        let (p, g, m, v) = inputs();
        let native = F64Backend::adam_step(p, g, m, v, step);
        let (p, g, m, v) = inputs();
        let reference = adam_step_reference(p, g, m, v, step);
        for (name, (a, b)) in ["parameter", "m", "v"]
            .iter()
            .zip(native.into_iter().zip(reference))
        {
            assert_eq!(
                a.into_data().to_vec::<f64>().unwrap(),
                b.into_data().to_vec::<f64>().unwrap(),
                "{name} at step {time}"
            );
        }
    }
}
