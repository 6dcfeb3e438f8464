//! Dense (fully connected) maps on the backend's GEMM.
//!
//! `y = x W (+ b)` over the last axis of `x`, for any number of leading axes, computed as one
//! `[rows, in] × [in, out]` product by [`RecurrentBackend::dense`] ([`matmul`]), or with the bias
//! and an optional ReLU as one [`RecurrentBackend::dense_layer`] ([`linear`], [`linear_relu`]):
//! on ndarray the `gemm` crate's kernels for the widest instruction set the CPU has (the bias
//! added by the product itself, the ReLU in place), under `Autodiff` one node whose backward
//! pass is one pointwise pass and two more such products (with [`Differentiation::Plain`],
//! burn's `matmul`, add and `relu`). burn's `Linear::forward` gives the same values (to
//! rounding) with `matmul`, which on ndarray is a batched product per leading index; rensa's
//! models call [`linear`] where a layer runs over many rows.

use burn::nn::Linear;
use burn::tensor::Tensor;

use crate::recurrent::{DenseLayer, Differentiation, RecurrentBackend};

/// `x W` for `x` `[..., in]` and `w` `[in, out]`: `[..., out]`.
///
/// # Panics
/// When the last axis of `x` is not `w`'s first.
pub fn matmul<B: RecurrentBackend, const D: usize>(
    x: Tensor<B, D>,
    w: Tensor<B, 2>,
    how: Differentiation,
) -> Tensor<B, D> {
    let [input, output] = w.dims();
    over_rows(x, [input, output], |x| B::dense(x, w, how))
}

/// `f` of the rows of `x` `[..., input]` as one `[rows, input]` matrix, whose `[rows, output]`
/// result takes `x`'s leading axes back.
///
/// # Panics
/// When the last axis of `x` is not `input`.
fn over_rows<B: RecurrentBackend, const D: usize>(
    x: Tensor<B, D>,
    [input, output]: [usize; 2],
    f: impl FnOnce(Tensor<B, 2>) -> Tensor<B, 2>,
) -> Tensor<B, D> {
    let mut dims = x.dims();
    assert_eq!(
        dims[D - 1],
        input,
        "dense: expected inputs of {input} features, got {:?}",
        dims
    );
    let rows = dims[..D - 1].iter().product::<usize>();
    let y = f(x.reshape([rows, input]));
    dims[D - 1] = output;
    y.reshape(dims)
}

/// burn's `Linear` (`x W + b`, `W` `[in, out]`) on the backend's GEMM; the values of
/// `layer.forward(x)` (to rounding: the bias is added inside the product on ndarray).
///
/// # Panics
/// As [`matmul`].
pub fn linear<B: RecurrentBackend, const D: usize>(
    x: Tensor<B, D>,
    layer: &Linear<B>,
    how: Differentiation,
) -> Tensor<B, D> {
    layer_on(x, layer, false, how)
}

/// `relu(x W + b)`: [`linear`] and a ReLU as one [`RecurrentBackend::dense_layer`] (on ndarray
/// the bias added by the GEMM and the ReLU in place; under `Autodiff` one graph node).
///
/// # Panics
/// As [`matmul`].
pub fn linear_relu<B: RecurrentBackend, const D: usize>(
    x: Tensor<B, D>,
    layer: &Linear<B>,
    how: Differentiation,
) -> Tensor<B, D> {
    layer_on(x, layer, true, how)
}

fn layer_on<B: RecurrentBackend, const D: usize>(
    x: Tensor<B, D>,
    layer: &Linear<B>,
    relu: bool,
    how: Differentiation,
) -> Tensor<B, D> {
    let dims = layer.weight.dims();
    over_rows(x, dims, |x| {
        B::dense_layer(
            DenseLayer {
                input: x,
                weight: layer.weight.val(),
                bias: layer.bias.as_ref().map(|b| b.val()),
                relu,
            },
            how,
        )
    })
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

    /// The same values and gradients (input, weight, bias) as burn's `Linear::forward` and
    /// `relu`, fused or plain, with and without a bias and a ReLU.
    #[test]
    fn linear_and_linear_relu_match_burns_linear_and_relu() {
        // draws from burn's shared generator: not while another test seeds it
        let _rng = rensa_testkit::rng_lock();
        let device = Default::default();
        let x = Tensor::<A, 3>::random([2, 4, 5], Distribution::Normal(0.0, 1.0), &device);
        for bias in [true, false] {
            let layer = LinearConfig::new(5, 3).with_bias(bias).init::<A>(&device);
            for relu in [false, true] {
                let run = |ours: Option<Differentiation>| {
                    let x = x.clone().require_grad();
                    let y = match (ours, relu) {
                        (Some(how), false) => linear(x.clone(), &layer, how),
                        (Some(how), true) => linear_relu(x.clone(), &layer, how),
                        (None, false) => layer.forward(x.clone()),
                        (None, true) => burn::tensor::activation::relu(layer.forward(x.clone())),
                    };
                    let g = (y.clone() * y.clone().add_scalar(0.5)).sum().backward();
                    let b = layer.bias.as_ref().map(|b| b.grad(&g).unwrap().into_data());
                    (
                        y.into_data(),
                        x.grad(&g).unwrap().into_data(),
                        layer.weight.grad(&g).unwrap().into_data(),
                        b,
                    )
                };
                let reference = run(None);
                for how in [Differentiation::Fused, Differentiation::Plain] {
                    let ours = run(Some(how));
                    let tol = burn::tensor::Tolerance::<f32>::absolute(1e-5);
                    ours.0.assert_approx_eq::<f32>(&reference.0, tol);
                    ours.1.assert_approx_eq::<f32>(&reference.1, tol);
                    ours.2.assert_approx_eq::<f32>(&reference.2, tol);
                    assert_eq!(ours.3.is_some(), bias);
                    if let (Some(o), Some(r)) = (&ours.3, &reference.3) {
                        o.assert_approx_eq::<f32>(r, tol);
                    }
                    if relu {
                        let y = ours.0.to_vec::<f32>().unwrap();
                        assert!(y.contains(&0.0) && y.iter().all(|&v| v >= 0.0));
                    }
                }
            }
        }
    }

    /// ndarray's pointwise backward pass gives the reference's values (burn's tensor ops), with
    /// outputs exactly at 0 and below (masked), and NaN kept by the forward pass (burn's provided
    /// `relu` and PyTorch's keep it too).
    #[test]
    fn the_pointwise_backward_pass_matches_the_reference() {
        type N = NdArray;
        use crate::recurrent::dense_layer_backward_reference;
        let device = Default::default();
        let y = Tensor::<N, 2>::from_floats([[0.0, 1.5, -0.0], [2.0, 0.0, 0.25]], &device);
        let d = Tensor::<N, 2>::from_floats([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]], &device);
        for relu in [false, true] {
            for bias in [false, true] {
                let ours = N::dense_layer_backward(relu.then(|| y.clone()), d.clone(), bias);
                let reference =
                    dense_layer_backward_reference(relu.then(|| y.clone()), d.clone(), bias);
                assert_eq!(ours.0.into_data(), reference.0.into_data());
                assert_eq!(
                    ours.1.map(|s| s.into_data()),
                    reference.1.map(|s| s.into_data())
                );
            }
        }
        let (g, sums) = N::dense_layer_backward(Some(y), d, true);
        assert_eq!(
            g.to_data().to_vec::<f32>().unwrap(),
            [0.0, -2.0, 0.0, 4.0, 0.0, -6.0]
        );
        assert_eq!(
            sums.unwrap().to_data().to_vec::<f32>().unwrap(),
            [4.0, -2.0, -6.0]
        );
        let x = Tensor::<N, 2>::from_floats([[1.0, f32::NAN], [-1.0, 2.0]], &device);
        let w = Tensor::<N, 2>::from_floats([[1.0], [0.0]], &device);
        let layer = DenseLayer {
            input: x,
            weight: w,
            bias: Some(Tensor::from_floats([-1.0], &device)),
            relu: true,
        };
        let y = N::dense_layer(layer, Differentiation::Fused)
            .to_data()
            .to_vec::<f32>()
            .unwrap();
        assert!(y[0].is_nan() && y[1] == 0.0, "{y:?}");
    }
}
