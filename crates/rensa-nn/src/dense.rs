//! Dense (fully connected) maps on the backend's GEMM.
//!
//! `y = x W (+ b)` over the last axis of `x`, for any number of leading axes, computed as one
//! `[rows, in] × [in, out]` product by [`RecurrentBackend::dense`]: on ndarray the `gemm`
//! crate's kernels for the widest instruction set the CPU has, under `Autodiff` one node whose
//! backward pass is two more such products (with [`Differentiation::Plain`], burn's `matmul`).
//! burn's `Linear::forward` gives the same values with `matmul`, which on ndarray is a batched
//! product per leading index; rensa's models call [`linear`] where a layer runs over many rows.

use burn::nn::Linear;
use burn::tensor::Tensor;

use crate::recurrent::{Differentiation, RecurrentBackend};

/// `x W` for `x` `[..., in]` and `w` `[in, out]`: `[..., out]`.
///
/// # Panics
/// When the last axis of `x` is not `w`'s first.
pub fn matmul<B: RecurrentBackend, const D: usize>(
    x: Tensor<B, D>,
    w: Tensor<B, 2>,
    how: Differentiation,
) -> Tensor<B, D> {
    let mut dims = x.dims();
    let [input, output] = w.dims();
    assert_eq!(
        dims[D - 1],
        input,
        "dense: expected inputs of {input} features, got {:?}",
        dims
    );
    let rows = dims[..D - 1].iter().product::<usize>();
    let y = B::dense(x.reshape([rows, input]), w, how);
    dims[D - 1] = output;
    y.reshape(dims)
}

/// burn's `Linear` (`x W + b`, `W` `[in, out]`) on the backend's GEMM; the same values as
/// `layer.forward(x)`.
///
/// # Panics
/// As [`matmul`].
pub fn linear<B: RecurrentBackend, const D: usize>(
    x: Tensor<B, D>,
    layer: &Linear<B>,
    how: Differentiation,
) -> Tensor<B, D> {
    let y = matmul(x, layer.weight.val(), how);
    match &layer.bias {
        Some(b) => y + b.val().unsqueeze(),
        None => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::nn::LinearConfig;
    use burn::tensor::Distribution;

    type A = Autodiff<NdArray>;

    /// `RecurrentBackend::tanh` under `Autodiff`: the values and gradient of burn's `tanh`, over
    /// a range that crosses the small-argument series and saturation.
    #[test]
    fn the_backends_tanh_matches_burns() {
        let device = Default::default();
        let x = Tensor::<A, 1>::from_floats(
            [
                -20.0, -3.0, -0.5, -0.06, -1e-4, 0.0, 1e-4, 0.07, 0.9, 4.0, 30.0,
            ],
            &device,
        )
        .reshape([1, 11]);
        let run = |fused: bool| {
            let x = x.clone().require_grad();
            let y = if fused {
                A::tanh(x.clone(), Differentiation::Fused)
            } else {
                x.clone().tanh()
            };
            let g = (y.clone() * y.clone().add_scalar(1.0)).sum().backward();
            (y.into_data(), x.grad(&g).unwrap().into_data())
        };
        let (ours, burns) = (run(true), run(false));
        let tol = burn::tensor::Tolerance::<f32>::absolute(1e-6);
        ours.0.assert_approx_eq::<f32>(&burns.0, tol);
        ours.1.assert_approx_eq::<f32>(&burns.1, tol);
    }

    /// The same values and gradients as burn's `Linear::forward`, fused or plain.
    #[test]
    fn linear_matches_burns_linear() {
        // draws from burn's shared generator: not while another test seeds it
        let _rng = rensa_testkit::rng_lock();
        let device = Default::default();
        let layer = LinearConfig::new(5, 3).init::<A>(&device);
        let x = Tensor::<A, 3>::random([2, 4, 5], Distribution::Normal(0.0, 1.0), &device);
        let reference = {
            let x = x.clone().require_grad();
            let y = layer.forward(x.clone());
            let g = (y.clone() * y.clone()).sum().backward();
            (
                y.into_data(),
                x.grad(&g).unwrap().into_data(),
                layer.weight.grad(&g).unwrap().into_data(),
            )
        };
        for how in [Differentiation::Fused, Differentiation::Plain] {
            let x = x.clone().require_grad();
            let y = linear(x.clone(), &layer, how);
            let g = (y.clone() * y.clone()).sum().backward();
            let ours = (
                y.into_data(),
                x.grad(&g).unwrap().into_data(),
                layer.weight.grad(&g).unwrap().into_data(),
            );
            let tol = burn::tensor::Tolerance::<f32>::default();
            ours.0.assert_approx_eq::<f32>(&reference.0, tol);
            ours.1.assert_approx_eq::<f32>(&reference.1, tol);
            ours.2.assert_approx_eq::<f32>(&reference.2, tol);
        }
    }
}
