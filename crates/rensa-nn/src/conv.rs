//! 2-D convolutions and transposed convolutions as one GEMM each.
//!
//! A convolution with kernel `k`, stride `s` and zero padding `p` maps `x` `[N, C, H, W]` to
//!
//! ```text
//! y[n, o, i, j] = b[o] + Σ_{c, u, v} w[o, c, u, v] · x_pad[n, c, s·i + u, s·j + v]
//! ```
//!
//! of `H_out = (H + 2p − k) / s + 1` rows (and likewise columns). [`Conv2d`] gathers the
//! `k_h · k_w` shifted views of the input ("im2col": one row per output pixel, one column per
//! `(u, v, c)`) and multiplies that matrix by the kernel as one `[N·H_out·W_out, k_h·k_w·C] ×
//! [k_h·k_w·C, O]` product on the backend's GEMM ([`dense::matmul`](crate::dense::matmul)).
//!
//! A transposed convolution (a "deconvolution", the gradient of a convolution with respect to
//! its input) scatters instead of gathering:
//!
//! ```text
//! y[n, o, s·i + u − p, s·j + v − p] += w[c, o, u, v] · x[n, c, i, j]
//! ```
//!
//! giving `H_out = (H − 1)·s + k − 2p` rows. [`ConvTranspose2d`] computes every `x · w[:, :, u, v]`
//! in one `[N·H·W, C] × [C, k_h·k_w·O]` product and adds the products into place ("col2im").
//!
//! The gather and the scatter are [`RecurrentBackend::unfold`] and [`RecurrentBackend::fold`],
//! adjoints of each other: under `Autodiff` each is one graph node whose backward pass is the
//! other, so a convolution's backward pass is two GEMMs and one fold, a transposed
//! convolution's two GEMMs and one unfold. On ndarray they are native loops over channels-last
//! buffers, elsewhere tensor ops ([`unfold_reference`](crate::recurrent::unfold_reference)).
//! burn-nn's `Conv2d` and `ConvTranspose2d` compute the same values with the same weight
//! layouts (`[O, C, k_h, k_w]` and `[C, O, k_h, k_w]`); on burn-ndarray 0.21 the convolutional
//! VAE did not finish ten epochs of Fashion-MNIST in 48 minutes with them (a profile put most of
//! the time in one scalar loop), and takes under a minute per epoch with these (two cores; see
//! BENCHMARKS.md).
//!
//! Not supported: dilation, groups, output padding.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Distribution, Tensor, backend::Backend};

use crate::Error;
use crate::dense::matmul;
use crate::recurrent::{Differentiation, RecurrentBackend, Window};

/// Configuration of a [`Conv2d`].
#[derive(Config, Debug)]
pub struct Conv2dConfig {
    /// Input and output channels, `[C, O]`.
    pub channels: [usize; 2],
    /// Kernel rows and columns.
    pub kernel: [usize; 2],
    /// Stride along rows and columns.
    #[config(default = "[1, 1]")]
    pub stride: [usize; 2],
    /// Zeros added on both sides of the rows and of the columns.
    #[config(default = "[0, 0]")]
    pub padding: [usize; 2],
    /// Whether to add a learned bias per output channel.
    #[config(default = true)]
    pub bias: bool,
}

/// Configuration of a [`ConvTranspose2d`].
#[derive(Config, Debug)]
pub struct ConvTranspose2dConfig {
    /// Input and output channels, `[C, O]`.
    pub channels: [usize; 2],
    /// Kernel rows and columns.
    pub kernel: [usize; 2],
    /// Stride along rows and columns (the upsampling factor).
    #[config(default = "[1, 1]")]
    pub stride: [usize; 2],
    /// Rows and columns cropped from both sides of the full output.
    #[config(default = "[0, 0]")]
    pub padding: [usize; 2],
    /// Whether to add a learned bias per output channel.
    #[config(default = true)]
    pub bias: bool,
}

/// Checks channels, kernel and stride (all at least 1).
fn validate_sizes(
    channels: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
) -> crate::Result<()> {
    for (field, [a, b]) in [
        ("channels", channels),
        ("kernel", kernel),
        ("stride", stride),
    ] {
        if a == 0 || b == 0 {
            return Err(Error::config(
                field,
                "at least 1 in both entries",
                format!("[{a}, {b}]"),
            ));
        }
    }
    Ok(())
}

/// A layer's kernel and bias.
type Parts<B> = (Param<Tensor<B, 4>>, Option<Param<Tensor<B, 1>>>);

/// The shapes of a layer's parameters.
struct Shapes {
    /// The kernel's.
    weight: [usize; 4],
    /// Output channels (the bias's length).
    out: usize,
    /// What PyTorch's initialisation divides by.
    fan_in: usize,
    /// Whether there is a bias.
    bias: bool,
}

impl Shapes {
    /// PyTorch's default initialisation: weights and biases uniform on `±1/√fan_in`.
    fn draw<B: Backend>(&self, device: &B::Device) -> Parts<B> {
        let bound = 1.0 / (self.fan_in as f64).sqrt();
        let uniform = Distribution::Uniform(-bound, bound);
        (
            Param::from_tensor(Tensor::random(self.weight, uniform, device)),
            self.bias
                .then(|| Param::from_tensor(Tensor::random([self.out], uniform, device))),
        )
    }

    /// Given parameters, checked against the shapes.
    fn given<B: Backend>(
        &self,
        weight: Tensor<B, 4>,
        bias: Option<Tensor<B, 1>>,
    ) -> crate::Result<Parts<B>> {
        let mismatch = |name, expected: Vec<usize>, got: Vec<usize>| {
            Err(Error::WeightShape {
                name,
                expected,
                got,
            })
        };
        if weight.dims() != self.weight {
            return mismatch("weight", self.weight.to_vec(), weight.dims().to_vec());
        }
        match (self.bias, &bias) {
            (true, Some(b)) if b.dims() != [self.out] => {
                return mismatch("bias", vec![self.out], b.dims().to_vec());
            }
            (true, None) => return mismatch("bias", vec![self.out], vec![]),
            (false, Some(b)) => return mismatch("bias", vec![], b.dims().to_vec()),
            _ => {}
        }
        Ok((Param::from_tensor(weight), bias.map(Param::from_tensor)))
    }
}

impl Conv2dConfig {
    /// Checks the sizes.
    ///
    /// # Errors
    /// A zero channel count, kernel side or stride.
    pub fn validate(&self) -> crate::Result<()> {
        validate_sizes(self.channels, self.kernel, self.stride)
    }

    fn shapes(&self) -> Shapes {
        let ([c, o], [kh, kw]) = (self.channels, self.kernel);
        Shapes {
            weight: [o, c, kh, kw],
            out: o,
            fan_in: c * kh * kw,
            bias: self.bias,
        }
    }

    fn build<B: Backend>(&self, (weight, bias): Parts<B>) -> Conv2d<B> {
        Conv2d {
            weight,
            bias,
            stride: self.stride,
            padding: self.padding,
        }
    }

    /// Builds the layer with PyTorch's initialisation (uniform on `±1/√(C·k_h·k_w)`), drawn now
    /// from the backend's generator.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn init<B: RecurrentBackend>(&self, device: &B::Device) -> crate::Result<Conv2d<B>> {
        self.validate()?;
        Ok(self.build(self.shapes().draw(device)))
    }

    /// The layer with given weights `[O, C, k_h, k_w]` and bias `[O]` (burn-nn's and PyTorch's
    /// layout).
    ///
    /// # Errors
    /// As [`validate`](Self::validate); a weight or bias of another shape, or a bias given to a
    /// configuration without one (and the reverse).
    pub fn init_with<B: RecurrentBackend>(
        &self,
        weight: Tensor<B, 4>,
        bias: Option<Tensor<B, 1>>,
    ) -> crate::Result<Conv2d<B>> {
        self.validate()?;
        Ok(self.build(self.shapes().given(weight, bias)?))
    }
}

impl ConvTranspose2dConfig {
    /// Checks the sizes.
    ///
    /// # Errors
    /// A zero channel count, kernel side or stride.
    pub fn validate(&self) -> crate::Result<()> {
        validate_sizes(self.channels, self.kernel, self.stride)
    }

    fn shapes(&self) -> Shapes {
        let ([c, o], [kh, kw]) = (self.channels, self.kernel);
        Shapes {
            weight: [c, o, kh, kw],
            out: o,
            // PyTorch takes the fan-in of a transposed convolution's weight from its second axis
            fan_in: o * kh * kw,
            bias: self.bias,
        }
    }

    fn build<B: Backend>(&self, (weight, bias): Parts<B>) -> ConvTranspose2d<B> {
        ConvTranspose2d {
            weight,
            bias,
            stride: self.stride,
            padding: self.padding,
        }
    }

    /// Builds the layer with PyTorch's initialisation (uniform on `±1/√(O·k_h·k_w)`: PyTorch
    /// takes the fan-in of a transposed convolution's `[C, O, k_h, k_w]` weight from its second
    /// axis), drawn now from the backend's generator.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn init<B: RecurrentBackend>(
        &self,
        device: &B::Device,
    ) -> crate::Result<ConvTranspose2d<B>> {
        self.validate()?;
        Ok(self.build(self.shapes().draw(device)))
    }

    /// The layer with given weights `[C, O, k_h, k_w]` and bias `[O]` (burn-nn's and
    /// PyTorch's layout).
    ///
    /// # Errors
    /// As [`Conv2dConfig::init_with`].
    pub fn init_with<B: RecurrentBackend>(
        &self,
        weight: Tensor<B, 4>,
        bias: Option<Tensor<B, 1>>,
    ) -> crate::Result<ConvTranspose2d<B>> {
        self.validate()?;
        Ok(self.build(self.shapes().given(weight, bias)?))
    }
}

/// A 2-D convolution (see the [module docs](self)). Built by [`Conv2dConfig`].
#[derive(Module, Debug)]
pub struct Conv2d<B: Backend> {
    /// The kernel, `[O, C, k_h, k_w]`.
    pub weight: Param<Tensor<B, 4>>,
    /// The bias, `[O]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
    stride: [usize; 2],
    padding: [usize; 2],
}

/// A 2-D transposed convolution (see the [module docs](self)). Built by
/// [`ConvTranspose2dConfig`].
#[derive(Module, Debug)]
pub struct ConvTranspose2d<B: Backend> {
    /// The kernel, `[C, O, k_h, k_w]`.
    pub weight: Param<Tensor<B, 4>>,
    /// The bias, `[O]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
    stride: [usize; 2],
    padding: [usize; 2],
}

/// The output side of a transposed convolution, or `None` when the crop leaves nothing.
fn transposed_side(input: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let full = (input.checked_sub(1)? * stride + kernel).checked_sub(2 * padding)?;
    (full > 0).then_some(full)
}

impl<B: RecurrentBackend> Conv2d<B> {
    /// The output's `[rows, columns]` for an input of `[rows, columns]`, or `None` when the
    /// (padded) input is smaller than the kernel.
    pub fn output_size(&self, input: [usize; 2]) -> Option<[usize; 2]> {
        let [_, c, kh, kw] = self.weight.dims();
        Window {
            batch: 1,
            image: input,
            channels: c,
            kernel: [kh, kw],
            stride: self.stride,
            padding: self.padding,
        }
        .output()
    }

    /// Convolves `x` `[N, C, H, W]` into `[N, O, H_out, W_out]`.
    ///
    /// # Panics
    /// As [`conv2d`].
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        conv2d(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            self.stride,
            self.padding,
        )
    }
}

/// Convolves `x` `[N, C, H, W]` with `weight` `[O, C, k_h, k_w]` (plus `bias` `[O]`) into
/// `[N, O, H_out, W_out]` (see the [module docs](self)): the function behind [`Conv2d`].
///
/// # Panics
/// If `x` does not have `C` channels, a bias is not `[O]`, a stride is 0, or the padded input is
/// smaller than the kernel.
pub fn conv2d<B: RecurrentBackend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    stride: [usize; 2],
    padding: [usize; 2],
) -> Tensor<B, 4> {
    let [o, c, kh, kw] = weight.dims();
    let [n, channels, h, w] = x.dims();
    assert_eq!(
        channels,
        c,
        "conv2d: expected inputs of {c} channels, got {:?}",
        x.dims()
    );
    assert!(stride[0] > 0 && stride[1] > 0, "conv2d: a stride of 0");
    let window = Window {
        batch: n,
        image: [h, w],
        channels: c,
        kernel: [kh, kw],
        stride,
        padding,
    };
    let Some([ho, wo]) = window.output() else {
        panic!(
            "conv2d: an input of {h} x {w} (padding {:?}) is smaller than the {kh} x {kw} kernel",
            padding
        )
    };
    let columns = B::unfold(x.permute([0, 2, 3, 1]), window, Differentiation::Fused);
    let kernel = weight.permute([2, 3, 1, 0]).reshape([kh * kw * c, o]);
    let mut y = matmul(columns, kernel, Differentiation::Fused);
    if let Some(b) = bias {
        assert_eq!(b.dims(), [o], "conv2d: a bias of {o} channels");
        y = y + b.reshape([1, o]);
    }
    y.reshape([n, ho, wo, o]).permute([0, 3, 1, 2])
}

impl<B: RecurrentBackend> ConvTranspose2d<B> {
    /// The output's `[rows, columns]` for an input of `[rows, columns]`, or `None` when the
    /// padding crops everything.
    pub fn output_size(&self, input: [usize; 2]) -> Option<[usize; 2]> {
        let [_, _, kh, kw] = self.weight.dims();
        Some([
            transposed_side(input[0], kh, self.stride[0], self.padding[0])?,
            transposed_side(input[1], kw, self.stride[1], self.padding[1])?,
        ])
    }

    /// Maps `x` `[N, C, H, W]` to `[N, O, (H − 1)·s + k − 2p, …]`.
    ///
    /// # Panics
    /// As [`conv_transpose2d`].
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        conv_transpose2d(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            self.stride,
            self.padding,
        )
    }
}

/// The transposed convolution of `x` `[N, C, H, W]` with `weight` `[C, O, k_h, k_w]` (plus
/// `bias` `[O]`), `[N, O, (H − 1)·s + k − 2p, …]` (see the [module docs](self)): the function
/// behind [`ConvTranspose2d`].
///
/// # Panics
/// If `x` does not have `C` channels, a bias is not `[O]`, a stride is 0, or the padding crops
/// the whole output.
pub fn conv_transpose2d<B: RecurrentBackend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    stride: [usize; 2],
    padding: [usize; 2],
) -> Tensor<B, 4> {
    let [c, o, kh, kw] = weight.dims();
    let [n, channels, h, w] = x.dims();
    assert_eq!(
        channels,
        c,
        "conv_transpose2d: expected inputs of {c} channels, got {:?}",
        x.dims()
    );
    assert!(
        stride[0] > 0 && stride[1] > 0,
        "conv_transpose2d: a stride of 0"
    );
    let size = [
        transposed_side(h, kh, stride[0], padding[0]),
        transposed_side(w, kw, stride[1], padding[1]),
    ];
    let [Some(ho), Some(wo)] = size else {
        panic!(
            "conv_transpose2d: padding {:?} crops the whole output of a {h} x {w} input",
            padding
        )
    };
    let rows = x.permute([0, 2, 3, 1]).reshape([n * h * w, c]);
    let kernel = weight.permute([0, 2, 3, 1]).reshape([c, kh * kw * o]);
    // every input pixel times every tap of the kernel, added into place: the fold of the
    // convolution that maps the output back to the input's size
    let products = matmul(rows, kernel, Differentiation::Fused);
    let window = Window {
        batch: n,
        image: [ho, wo],
        channels: o,
        kernel: [kh, kw],
        stride,
        padding,
    };
    debug_assert_eq!(window.output(), Some([h, w]));
    let mut y = B::fold(products, window, Differentiation::Fused);
    if let Some(b) = bias {
        assert_eq!(b.dims(), [o], "conv_transpose2d: a bias of {o} channels");
        y = y + b.reshape([1, 1, 1, o]);
    }
    y.permute([0, 3, 1, 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides() {
        assert_eq!(transposed_side(7, 4, 2, 1), Some(14));
        assert_eq!(transposed_side(14, 4, 2, 1), Some(28));
        assert_eq!(transposed_side(1, 2, 1, 1), None);
        assert_eq!(transposed_side(0, 3, 1, 0), None);
    }

    #[test]
    fn zero_sizes_are_errors_naming_the_field() {
        let e = Conv2dConfig::new([1, 0], [3, 3]).validate().unwrap_err();
        assert!(e.to_string().contains("`channels`"), "{e}");
        let e = ConvTranspose2dConfig::new([1, 2], [3, 3])
            .with_stride([0, 1])
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("`stride`"), "{e}");
    }
}
