//! burn-ndarray's f32 reciprocal is exact (the workspace patches burn-ndarray 0.21, see
//! patches/README.md): published, it used the hardware estimate on buffers of 32 elements or
//! more (in place: on the aligned middle of the buffer, exact 1/x at its ends), so `1/x`,
//! log-softmax's gradient and every training step built on them depended on where a buffer
//! happened to lie in memory.

use burn::tensor::{Tensor, TensorData, activation::log_softmax};

type B = burn::backend::NdArray;
type A = burn::backend::Autodiff<B>;

fn values() -> Vec<f32> {
    (0..100).map(|i| 0.5 + i as f32 * 0.37).collect()
}

#[test]
fn reciprocal_is_exact_at_every_address() {
    let device = Default::default();
    let values = values();
    let x = Tensor::<B, 1>::from_data(TensorData::new(values.clone(), [100]), &device);
    let mut shift = Vec::new();
    for k in 0..16 {
        // moves the address of the next allocation
        shift.push(vec![0u8; 4 * k + 4]);
        // a fresh, uniquely owned buffer: burn-ndarray's in-place path
        let unique = x.clone() + 0.0;
        let inplace: Vec<f32> = unique.recip().into_data().to_vec().unwrap();
        // a shared buffer: the path that writes a new one
        let owned: Vec<f32> = x.clone().recip().into_data().to_vec().unwrap();
        for (i, v) in values.iter().enumerate() {
            let exact = (1.0 / v).to_bits();
            assert_eq!(
                inplace[i].to_bits(),
                exact,
                "in place: element {i}, try {k}"
            );
            assert_eq!(
                owned[i].to_bits(),
                exact,
                "new buffer: element {i}, try {k}"
            );
        }
    }
    // the shared input is left as it was, and a strided (transposed) view is exact too
    assert_eq!(x.clone().into_data().to_vec::<f32>().unwrap(), values);
    let m = x.reshape([10, 10]).transpose();
    let got: Vec<f32> = m.clone().recip().into_data().to_vec().unwrap();
    let of: Vec<f32> = m.into_data().to_vec().unwrap();
    for (g, v) in got.iter().zip(&of) {
        assert_eq!(g.to_bits(), (1.0 / v).to_bits(), "transposed: 1/{v}");
    }
}

#[test]
fn log_softmax_gradient_is_the_same_on_every_call() {
    let device = Default::default();
    // 40 rows: log-softmax's backward takes the reciprocal of the [rows, 1] sums, and the
    // published crate used the estimate from 32 elements on (there this test fails; a variant
    // that counts instead of stopping found 8 of 16 calls differing from the first, and 4 of
    // the 1,000 elements beyond the f64 formula's tolerance)
    let values: Vec<f32> = (0..1000).map(|i| 0.5 + i as f32 * 0.037).collect();
    let logits: Vec<f32> = values.iter().map(|v| (v * 1.7).sin() * 3.0).collect();
    let weights: Vec<f32> = values.iter().map(|v| (v * 0.9).cos()).collect();
    let gradient = || {
        let z = Tensor::<A, 1>::from_data(TensorData::new(logits.clone(), [1000]), &device)
            .reshape([40, 25])
            .require_grad();
        let w = Tensor::<A, 1>::from_data(TensorData::new(weights.clone(), [1000]), &device)
            .reshape([40, 25]);
        let grads = (log_softmax(z.clone(), 1) * w).sum().backward();
        let g: Vec<f32> = z.grad(&grads).unwrap().into_data().to_vec().unwrap();
        g.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    };
    let first = gradient();
    let mut shift = Vec::new();
    for k in 0..16 {
        shift.push(vec![0u8; 4 * k + 4]);
        assert_eq!(gradient(), first, "call {k}");
    }
    // and it is d/dz of Σ w·log_softmax(z) = w - softmax(z)·Σw, row by row, in f64
    for (r, row) in logits.chunks(25).enumerate() {
        let w = &weights[r * 25..][..25];
        let m = row.iter().fold(f64::MIN, |m, &x| m.max(x as f64));
        let s: f64 = row.iter().map(|&x| (x as f64 - m).exp()).sum();
        let sw: f64 = w.iter().map(|&x| x as f64).sum();
        for j in 0..25 {
            let want = w[j] as f64 - (row[j] as f64 - m).exp() / s * sw;
            let got = f32::from_bits(first[r * 25 + j]) as f64;
            let tolerance = 2e-6 * (1.0 + sw.abs());
            assert!(
                (got - want).abs() <= tolerance,
                "row {r}, {j}: {got} vs {want}"
            );
        }
    }
}
