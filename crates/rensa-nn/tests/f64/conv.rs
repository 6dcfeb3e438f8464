//! Finite-difference checks in f64 of the convolutions' gradients with respect to the input,
//! the kernel and the bias, strided and padded, plain and transposed.

use burn::tensor::Tensor;
use rensa_nn::conv::{conv_transpose2d, conv2d};
use rensa_testkit::{F64Autodiff, GradCheck, seeded_normal};

type AD = F64Autodiff;

#[test]
fn convolution_gradients() {
    // input [2, 2, 5, 4], 3 output channels, kernel 3 x 2, stride (2, 1), padding (1, 1)
    let (n, c, h, w, o, kh, kw) = (2, 2, 5, 4, 3, 3, 2);
    let inputs = vec![
        seeded_normal(1, n * c * h * w, 1.0),
        seeded_normal(2, o * c * kh * kw, 0.5),
        seeded_normal(3, o, 0.5),
    ];
    GradCheck::default().check(&inputs, |xs| {
        let y = conv2d(
            xs[0].clone().reshape([n, c, h, w]),
            xs[1].clone().reshape([o, c, kh, kw]),
            Some(xs[2].clone()),
            [2, 1],
            [1, 1],
        );
        weighted_sum(y, 4)
    });
}

#[test]
fn transposed_convolution_gradients() {
    // input [2, 3, 3, 2], 2 output channels, kernel 4 x 3, stride (2, 2), padding (1, 0)
    let (n, c, h, w, o, kh, kw) = (2, 3, 3, 2, 2, 4, 3);
    let inputs = vec![
        seeded_normal(5, n * c * h * w, 1.0),
        seeded_normal(6, c * o * kh * kw, 0.5),
        seeded_normal(7, o, 0.5),
    ];
    GradCheck::default().check(&inputs, |xs| {
        let y = conv_transpose2d(
            xs[0].clone().reshape([n, c, h, w]),
            xs[1].clone().reshape([c, o, kh, kw]),
            Some(xs[2].clone()),
            [2, 2],
            [1, 0],
        );
        weighted_sum(y, 8)
    });
}

/// `Σ y · g` with fixed random weights `g`, so that every output element's gradient counts.
fn weighted_sum(y: Tensor<AD, 4>, seed: u64) -> Tensor<AD, 1> {
    let g = rensa_testkit::normal_tensor(seed, y.dims(), 1.0, &y.device());
    (y * g).sum()
}
