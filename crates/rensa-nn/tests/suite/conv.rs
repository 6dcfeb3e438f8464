//! rensa's convolutions against burn-nn's on copied weights: outputs and the gradients of the
//! input, the kernel and the bias, for kernels, strides and paddings of every kind (square and
//! not, stride above, equal to and below the kernel, kernels not a multiple of the stride), on
//! ndarray and wgpu; and the errors of bad sizes and weights.
//!
//! The reference is burn-nn on ndarray for both backends: with a stride larger than the kernel
//! (the case `[1, 2, 6, 6]`, kernel 2, stride 3 below), burn-nn's `Conv2d` on wgpu 0.21 returns
//! zero input gradients for 32 of the 72 pixels, pixels that the kernel reads, where burn-nn on
//! ndarray and rensa on both backends agree on non-zero ones.

use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv as burn_conv;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use rensa_nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
use rensa_nn::recurrent::RecurrentBackend;
use rensa_testkit::{TestAutodiff, Tolerance, assert_data_close, normal_tensor};

/// An input `[N, C, H, W]`, output channels, kernel, stride, padding.
#[derive(Clone, Copy, Debug)]
struct Case {
    input: [usize; 4],
    out: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
}

const fn case(
    input: [usize; 4],
    out: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Case {
    Case {
        input,
        out,
        kernel,
        stride,
        padding,
    }
}

const CASES: [Case; 7] = [
    case([2, 1, 28, 28], 4, [4, 4], [2, 2], [1, 1]), // the VAE's first layer
    case([2, 3, 7, 7], 5, [3, 3], [1, 1], [1, 1]),
    case([1, 2, 9, 8], 3, [3, 2], [2, 1], [1, 0]),
    case([3, 2, 10, 11], 2, [5, 5], [3, 3], [2, 2]),
    case([2, 4, 5, 5], 6, [1, 1], [1, 1], [0, 0]),
    case([1, 2, 6, 6], 3, [2, 2], [3, 3], [0, 0]), // stride above the kernel
    case([2, 3, 4, 5], 2, [4, 3], [2, 3], [0, 1]),
];

/// Which layer computes.
#[derive(Clone, Copy, PartialEq)]
enum Impl {
    Rensa,
    BurnNn,
}

/// The output and the gradients of `Σ out · g` (g a fixed random tensor) with respect to the
/// input, the kernel and the bias, as host data.
fn run<B: AutodiffBackend + RecurrentBackend>(
    case: Case,
    transposed: bool,
    which: Impl,
    seed: u64,
    device: &B::Device,
) -> [TensorData; 4] {
    let Case {
        input,
        out,
        kernel,
        stride,
        padding,
    } = case;
    let c = input[1];
    let shape = if transposed {
        [c, out, kernel[0], kernel[1]]
    } else {
        [out, c, kernel[0], kernel[1]]
    };
    let weight: Tensor<B, 4> = normal_tensor(seed, shape, 0.3, device).require_grad();
    let bias: Tensor<B, 1> = normal_tensor(seed + 1, [out], 0.3, device).require_grad();
    let x: Tensor<B, 4> = normal_tensor(seed + 2, input, 1.0, device).require_grad();
    let y = match (transposed, which) {
        (false, Impl::Rensa) => Conv2dConfig::new([c, out], kernel)
            .with_stride(stride)
            .with_padding(padding)
            .init_with(weight.clone(), Some(bias.clone()))
            .unwrap()
            .forward(x.clone()),
        (true, Impl::Rensa) => ConvTranspose2dConfig::new([c, out], kernel)
            .with_stride(stride)
            .with_padding(padding)
            .init_with(weight.clone(), Some(bias.clone()))
            .unwrap()
            .forward(x.clone()),
        (false, Impl::BurnNn) => {
            let mut layer = burn_conv::Conv2dConfig::new([c, out], kernel)
                .with_stride(stride)
                .with_padding(PaddingConfig2d::Explicit(
                    padding[0], padding[1], padding[0], padding[1],
                ))
                .init::<B>(device);
            layer.weight = Param::from_tensor(weight.clone());
            layer.bias = Some(Param::from_tensor(bias.clone()));
            layer.forward(x.clone())
        }
        (true, Impl::BurnNn) => {
            let mut layer = burn_conv::ConvTranspose2dConfig::new([c, out], kernel)
                .with_stride(stride)
                .with_padding(padding)
                .init::<B>(device);
            layer.weight = Param::from_tensor(weight.clone());
            layer.bias = Some(Param::from_tensor(bias.clone()));
            layer.forward(x.clone())
        }
    };
    let g: Tensor<B, 4> = normal_tensor(seed + 3, y.dims(), 1.0, device);
    let grads = (y.clone() * g).sum().backward();
    [
        y.into_data(),
        x.grad(&grads).expect("an input gradient").into_data(),
        weight.grad(&grads).expect("a kernel gradient").into_data(),
        bias.grad(&grads).expect("a bias gradient").into_data(),
    ]
}

/// Every case, both layers: rensa on `B` against burn-nn on ndarray.
fn matches_burn_nn<B: AutodiffBackend + RecurrentBackend>(device: &B::Device, tol: Tolerance) {
    for transposed in [false, true] {
        for (i, case) in CASES.into_iter().enumerate() {
            let seed = 10 * i as u64;
            let ours = run::<B>(case, transposed, Impl::Rensa, seed, device);
            let reference =
                run::<TestAutodiff>(case, transposed, Impl::BurnNn, seed, &Default::default());
            let layer = if transposed {
                "conv_transpose2d"
            } else {
                "conv2d"
            };
            for (what, (a, b)) in [
                "output",
                "input gradient",
                "kernel gradient",
                "bias gradient",
            ]
            .into_iter()
            .zip(ours.iter().zip(&reference))
            {
                assert_data_close(a, b, tol, &format!("{layer} {case:?}: {what}"));
            }
        }
    }
}

#[test]
fn convolutions_match_burn_nn_on_ndarray() {
    matches_burn_nn::<TestAutodiff>(&Default::default(), Tolerance::F32);
}

#[test]
fn convolutions_match_burn_nn_on_wgpu() {
    let Some(device) = rensa_testkit::wgpu_device_or_skip() else {
        return;
    };
    matches_burn_nn::<rensa_testkit::WgpuAutodiff>(&device, Tolerance::F32_LOOSE);
}

#[test]
fn bad_sizes_and_weights_are_errors() {
    type B = rensa_testkit::TestBackend;
    let device = Default::default();
    let e = Conv2dConfig::new([2, 3], [3, 0])
        .init::<B>(&device)
        .unwrap_err();
    assert!(e.to_string().contains("`kernel`"), "{e}");
    let e = Conv2dConfig::new([2, 3], [3, 3])
        .init_with::<B>(Tensor::zeros([3, 2, 3, 2], &device), None)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("`weight` must have shape [3, 2, 3, 3]"),
        "{e}"
    );
    let e = ConvTranspose2dConfig::new([2, 3], [3, 3])
        .init_with::<B>(
            Tensor::zeros([2, 3, 3, 3], &device),
            Some(Tensor::zeros([2], &device)),
        )
        .unwrap_err();
    assert!(e.to_string().contains("`bias` must have shape [3]"), "{e}");
    let e = ConvTranspose2dConfig::new([2, 3], [3, 3])
        .with_bias(false)
        .init_with::<B>(
            Tensor::zeros([2, 3, 3, 3], &device),
            Some(Tensor::zeros([3], &device)),
        )
        .unwrap_err();
    assert!(e.to_string().contains("`bias`"), "{e}");
}

#[test]
#[should_panic(expected = "smaller than the 5 x 5 kernel")]
fn an_input_smaller_than_the_kernel_panics_naming_the_sizes() {
    type B = rensa_testkit::TestBackend;
    let device = Default::default();
    let conv = Conv2dConfig::new([1, 1], [5, 5])
        .init::<B>(&device)
        .unwrap();
    conv.forward(Tensor::zeros([1, 1, 3, 3], &device));
}

#[test]
#[should_panic(expected = "expected inputs of 2 channels")]
fn wrong_channels_panic_naming_the_shape() {
    type B = rensa_testkit::TestBackend;
    let device = Default::default();
    let conv = ConvTranspose2dConfig::new([2, 1], [2, 2])
        .init::<B>(&device)
        .unwrap();
    conv.forward(Tensor::zeros([1, 3, 3, 3], &device));
}

#[test]
fn native_unfold_and_fold_equal_the_tensor_op_reference() {
    use rensa_nn::recurrent::{
        Differentiation, RecurrentBackend, Window, fold_reference, unfold_reference,
    };
    type B = rensa_testkit::TestBackend;
    let device = Default::default();
    for (i, case) in CASES.into_iter().enumerate() {
        let [n, c, h, w] = case.input;
        let window = Window {
            batch: n,
            image: [h, w],
            channels: c,
            kernel: case.kernel,
            stride: case.stride,
            padding: case.padding,
        };
        let x: Tensor<B, 4> = normal_tensor(i as u64, [n, h, w, c], 1.0, &device);
        let native = B::unfold(x.clone(), window, Differentiation::Fused);
        assert_data_close(
            &native.into_data(),
            &unfold_reference(x, window).into_data(),
            Tolerance::F32,
            &format!("unfold {case:?}"),
        );
        let columns: Tensor<B, 2> =
            normal_tensor(i as u64 + 100, window.columns_shape(), 1.0, &device);
        let native = B::fold(columns.clone(), window, Differentiation::Fused);
        assert_data_close(
            &native.into_data(),
            &fold_reference(columns, window).into_data(),
            Tolerance::F32,
            &format!("fold {case:?}"),
        );
    }
}
