//! Losses whose tensor-op form is costly: one fused pass on backends that have one.
//!
//! [`bernoulli_nll`] is the negative log-likelihood of targets `x ∈ [0, 1]` under independent
//! Bernoulli distributions with logits `l` (probabilities `σ(l)`), summed over the last axis:
//!
//! ```text
//! −log p(x | l) = Σⱼ −x_j log σ(l_j) − (1 − x_j) log(1 − σ(l_j)) = Σⱼ softplus(l_j) − x_j l_j
//! ∂/∂l_j = σ(l_j) − x_j
//! ```
//!
//! It is Keras's `binary_crossentropy(from_logits=True)` and PyTorch's
//! `binary_cross_entropy_with_logits` with the sum over features instead of the mean: the
//! reconstruction term of a VAE with Bernoulli pixels. Computed stably as
//! `max(l, 0) + log1p(e^{−|l|}) − x l`, it stays finite for any finite logit. In tensor ops that
//! is nine passes over the batch with a graph node each; on ndarray, [`RecurrentBackend`] makes
//! it one vectorised pass forward and one backward.
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::Tensor;
//! use rensa_nn::loss::bernoulli_nll;
//! use rensa_nn::recurrent::Differentiation;
//!
//! let device = Default::default();
//! let logits = Tensor::<NdArray, 2>::from_floats([[0.0, 0.0], [20.0, -20.0]], &device);
//! let targets = Tensor::<NdArray, 2>::from_floats([[1.0, 0.0], [1.0, 0.0]], &device);
//! let nll = bernoulli_nll(logits, targets, Differentiation::Fused).into_data();
//! let nll = nll.as_slice::<f32>().unwrap();
//! assert!((nll[0] - 2.0 * 2f32.ln()).abs() < 1e-6); // two fair coins
//! assert!(nll[1] < 1e-8); // confident and right
//! ```

use burn::tensor::Tensor;

use crate::recurrent::{Differentiation, RecurrentBackend};

/// `−log Bernoulli(x; σ(l))` of every row of `logits` and `targets` `[rows, cols]`, summed over
/// the columns: `[rows]` (see the [module docs](self)). With [`Differentiation::Plain`],
/// `Autodiff` records burn's tensor ops instead of one fused node.
///
/// # Panics
/// When `targets` is not of the logits' shape.
pub fn bernoulli_nll<B: RecurrentBackend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2>,
    how: Differentiation,
) -> Tensor<B, 1> {
    assert_eq!(
        logits.dims(),
        targets.dims(),
        "bernoulli_nll: targets {:?} do not match logits {:?}",
        targets.dims(),
        logits.dims()
    );
    B::bernoulli_nll(logits, targets, how)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recurrent::bernoulli_nll_reference;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::{TensorData, Tolerance};

    type A = Autodiff<NdArray>;

    fn inputs<B: burn::tensor::backend::Backend>(
        device: &B::Device,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let (rows, cols) = (6, 37);
        let l: Vec<f64> = (0..rows * cols)
            .map(|i| {
                let t = i as f64 / (rows * cols) as f64;
                // no logit exactly 0, where burn's `abs` and `clamp_min` take a one-sided
                // derivative and the tensor-op gradient is not σ(0) − x
                (t - 0.5) * 60.0 * (t * 23.0).sin().powi(3) + 1e-3
            })
            .collect();
        let x: Vec<f64> = (0..rows * cols)
            .map(|i| ((i * 37) % 11) as f64 / 10.0)
            .collect();
        (
            Tensor::from_data(
                TensorData::new(l, [rows, cols]).convert::<B::FloatElem>(),
                device,
            ),
            Tensor::from_data(
                TensorData::new(x, [rows, cols]).convert::<B::FloatElem>(),
                device,
            ),
        )
    }

    /// Fused and plain: the same values and the same gradients in the logits and the targets.
    #[test]
    fn fused_matches_the_tensor_ops() {
        let device = Default::default();
        let (l, x) = inputs::<A>(&device);
        let run = |how: Differentiation| {
            let (l, x) = (l.clone().require_grad(), x.clone().require_grad());
            let y = bernoulli_nll(l.clone(), x.clone(), how);
            // a weight per row, so that the upstream gradient is not all ones
            let w = Tensor::<A, 1>::from_floats([1.0, -2.0, 0.5, 3.0, 0.0, 1.5], &device);
            let g = (y.clone() * w).sum().backward();
            (
                y.into_data(),
                l.grad(&g).unwrap().into_data(),
                x.grad(&g).unwrap().into_data(),
            )
        };
        let (fused, plain) = (run(Differentiation::Fused), run(Differentiation::Plain));
        let tol = Tolerance::<f32>::absolute(1e-4);
        fused.0.assert_approx_eq::<f32>(&plain.0, tol);
        fused
            .1
            .assert_approx_eq::<f32>(&plain.1, Tolerance::absolute(1e-6));
        fused
            .2
            .assert_approx_eq::<f32>(&plain.2, Tolerance::absolute(1e-5));
    }

    /// ndarray's native loop gives the reference's values, extremes included (f64: the f64 test
    /// binary, `tests/f64/loss.rs`, with the finite-difference check).
    #[test]
    fn the_native_loop_matches_the_reference() {
        let device = Default::default();
        let (l, x) = inputs::<NdArray>(&device);
        let l = l.mul_scalar(3.0); // logits up to ±90: past exp's f32 range
        let ours = bernoulli_nll(l.clone(), x.clone(), Differentiation::Fused).into_data();
        let reference = bernoulli_nll_reference(l, x).into_data();
        ours.assert_approx_eq::<f32>(&reference, Tolerance::relative(1e-5));
    }

    #[test]
    #[should_panic(expected = "do not match logits")]
    fn targets_of_another_shape_are_refused() {
        let device = Default::default();
        let l = Tensor::<NdArray, 2>::zeros([2, 3], &device);
        let x = Tensor::<NdArray, 2>::zeros([3, 2], &device);
        let _ = bernoulli_nll(l, x, Differentiation::Fused);
    }
}
