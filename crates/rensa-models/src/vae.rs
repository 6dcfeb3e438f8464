//! The variational autoencoder (Kingma and Welling, 2014): an autoencoder whose latent code is a
//! probability distribution, not a point.
//!
//! An autoencoder maps an image `x` to a code and back. A VAE's encoder maps it to the
//! parameters of a Gaussian over the code, `q(z|x) = N(μ(x), diag σ²(x))`; the decoder maps a
//! code to a distribution over images, here independent Bernoullis over the pixels,
//! `p(x|z) = Π_i Bernoulli(x_i; sigmoid(f(z)_i))`; the prior over codes is `p(z) = N(0, I)`.
//! Training maximises the evidence lower bound of each image,
//!
//! ```text
//! log p(x) ≥ ELBO = E_{z~q(z|x)}[log p(x|z)] − KL(q(z|x) ‖ p(z))
//! ```
//!
//! that is, it minimises `−ELBO` = reconstruction (the pixels' binary cross-entropy, summed) +
//! KL (closed form, [`DiagonalGaussian::kl_standard`]), estimated with one reparameterised
//! sample `z = μ + σ ⊙ ε` per image so that the gradient flows to the encoder. Because the
//! latent is a distribution, decoding draws from the prior `N(0, I)` gives new images, and the
//! codes of similar images lie close.
//!
//! Two architectures ([`Architecture`]):
//! - **MLP**, the model of pytorch/examples: `784 → 400 (ReLU) → (μ, log σ²) of 20`, then
//!   `20 → 400 (ReLU) → 784` logits;
//! - **convolutional**: two stride-2 4x4 convolutions (32 and 64 channels, ReLU) to a 7x7 grid,
//!   a hidden layer of `hidden` units (ReLU), then `(μ, log σ²)`; the decoder mirrors it
//!   (`hidden` units, the 7x7 grid of 64, two stride-2 4x4 transposed convolutions to 32
//!   channels and to the pixels' logits) ([`rensa_nn::conv`]: each layer one GEMM).
//!
//! Losses are reported in nats per image (the sums over pixels and latent dimensions, averaged
//! over the batch).
//!
//! The pixels are grey levels in `[0, 1]` (`x / 255`), not binarised, as pytorch/examples
//! trains: the Bernoulli cross-entropy of a grey level `x_i` is at least its entropy
//! `H(x_i)`, above 0 for every grey strictly between black and white, so the reported `−ELBO` is a training loss to compare between models on the
//! same data, not a bound on `−log p(x)` of a density over images, and not comparable with the
//! likelihoods reported on binarised MNIST.
//!
//! [`DiagonalGaussian::kl_standard`]: rensa_nn::latent::DiagonalGaussian::kl_standard

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Tensor, backend::Backend};
use rensa_data::idx::ImageBatch;
use rensa_nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use rensa_nn::dense::{linear, linear_relu};
use rensa_nn::latent::DiagonalGaussian;
use rensa_nn::recurrent::RecurrentBackend;
use rensa_train::{Objective, Output, StepInfo};

/// The encoder and decoder of a [`Vae`].
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Fully connected, one hidden layer each way.
    Mlp,
    /// Two strided convolutions each way.
    Conv,
}

/// Configuration of a [`Vae`].
#[derive(Config, Debug)]
pub struct VaeConfig {
    /// Rows of an image.
    #[config(default = 28)]
    pub rows: usize,
    /// Columns of an image.
    #[config(default = 28)]
    pub cols: usize,
    /// Dimensions of the latent code.
    #[config(default = 20)]
    pub latent: usize,
    /// Units of the hidden layers (the MLP's; the convolutional model's between its grid and the
    /// latent).
    #[config(default = 400)]
    pub hidden: usize,
    /// The encoder and decoder.
    #[config(default = "Architecture::Mlp")]
    pub architecture: Architecture,
}

/// Channels of the convolutional encoder's two layers (the decoder's in reverse).
const CONV_CHANNELS: [usize; 2] = [32, 64];

impl VaeConfig {
    /// Checks the sizes.
    ///
    /// # Errors
    /// A zero size, or (convolutional) images whose sides are not multiples of 4.
    pub fn validate(&self) -> rensa_nn::Result<()> {
        rensa_nn::at_least_one(&[
            ("rows", self.rows),
            ("cols", self.cols),
            ("latent", self.latent),
            ("hidden", self.hidden),
        ])?;
        if self.architecture == Architecture::Conv {
            crate::quarter_sides(self.rows, self.cols)?;
        }
        Ok(())
    }

    /// Builds the model with burn's default initialisers (PyTorch's), drawn now from the
    /// backend's generator.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn init<B: RecurrentBackend>(&self, device: &B::Device) -> rensa_nn::Result<Vae<B>> {
        self.validate()?;
        let pixels = self.rows * self.cols;
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        let (mlp, conv) = match self.architecture {
            Architecture::Mlp => (
                Some(Mlp {
                    encode: linear(pixels, self.hidden),
                    decode_hidden: linear(self.latent, self.hidden),
                    decode: linear(self.hidden, pixels),
                }),
                None,
            ),
            Architecture::Conv => {
                let [c1, c2] = CONV_CHANNELS;
                let grid = c2 * (self.rows / 4) * (self.cols / 4);
                let down = |i, o| {
                    Conv2dConfig::new([i, o], [4, 4])
                        .with_stride([2, 2])
                        .with_padding([1, 1])
                        .init(device)
                };
                let up = |i, o| {
                    ConvTranspose2dConfig::new([i, o], [4, 4])
                        .with_stride([2, 2])
                        .with_padding([1, 1])
                        .init(device)
                };
                (
                    None,
                    Some(Convolutional {
                        down1: down(1, c1)?,
                        down2: down(c1, c2)?,
                        encode: linear(grid, self.hidden),
                        decode_hidden: linear(self.latent, self.hidden),
                        decode_grid: linear(self.hidden, grid),
                        up1: up(c2, c1)?,
                        up2: up(c1, 1)?,
                    }),
                )
            }
        };
        Ok(rensa_nn::init::materialise(Vae {
            mlp,
            conv,
            mean: linear(self.hidden, self.latent),
            log_var: linear(self.hidden, self.latent),
            rows: self.rows,
            cols: self.cols,
            latent: self.latent,
        }))
    }
}

/// The MLP's layers.
#[derive(Module, Debug)]
struct Mlp<B: Backend> {
    encode: Linear<B>,
    decode_hidden: Linear<B>,
    decode: Linear<B>,
}

/// The convolutional layers.
#[derive(Module, Debug)]
struct Convolutional<B: Backend> {
    down1: Conv2d<B>,
    down2: Conv2d<B>,
    encode: Linear<B>,
    decode_hidden: Linear<B>,
    decode_grid: Linear<B>,
    up1: ConvTranspose2d<B>,
    up2: ConvTranspose2d<B>,
}

/// A variational autoencoder over grey images (see the [module docs](self)). Built by
/// [`VaeConfig`].
#[derive(Module, Debug)]
pub struct Vae<B: Backend> {
    mlp: Option<Mlp<B>>,
    conv: Option<Convolutional<B>>,
    mean: Linear<B>,
    log_var: Linear<B>,
    rows: usize,
    cols: usize,
    latent: usize,
}

/// The terms of `−ELBO` per image, `[batch]` each, in nats.
#[derive(Clone, Debug)]
pub struct Elbo<B: Backend> {
    /// `−log p(x|z)`: the binary cross-entropy of the pixels, summed.
    pub reconstruction: Tensor<B, 1>,
    /// `KL(q(z|x) ‖ N(0, I))`.
    pub kl: Tensor<B, 1>,
}

impl<B: Backend> Elbo<B> {
    /// `−ELBO = reconstruction + KL`, `[batch]`.
    pub fn negative(&self) -> Tensor<B, 1> {
        self.reconstruction.clone() + self.kl.clone()
    }
}

/// `x W + b` on the backend's GEMM ([`rensa_nn::dense::linear`]: on ndarray the `gemm` crate's
/// kernels, faster than burn's `matmul` for these tall products).
fn dense<B: RecurrentBackend>(layer: &Linear<B>, x: Tensor<B, 2>) -> Tensor<B, 2> {
    linear(x, layer, rensa_nn::recurrent::Differentiation::Fused)
}

/// `relu(x W + b)` as one layer ([`rensa_nn::dense::linear_relu`]: on ndarray the bias added by
/// the GEMM and the ReLU in place).
fn dense_relu<B: RecurrentBackend>(layer: &Linear<B>, x: Tensor<B, 2>) -> Tensor<B, 2> {
    linear_relu(x, layer, rensa_nn::recurrent::Differentiation::Fused)
}

/// `−log Bernoulli(x; σ(l))` summed over the pixels, `softplus(l) − x l`
/// ([`rensa_nn::loss::bernoulli_nll`]: one fused pass on ndarray).
fn bernoulli_nll<B: RecurrentBackend>(logits: Tensor<B, 2>, x: Tensor<B, 2>) -> Tensor<B, 1> {
    rensa_nn::loss::bernoulli_nll(logits, x, rensa_nn::recurrent::Differentiation::Fused)
}

impl<B: RecurrentBackend> Vae<B> {
    /// Dimensions of the latent code.
    pub fn latent(&self) -> usize {
        self.latent
    }

    /// Pixels of an image, `(rows, cols)`.
    pub fn image_size(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    fn device(&self) -> B::Device {
        self.mean.weight.val().device()
    }

    /// `q(z|x)` of flattened images `[batch, rows * cols]` in `[0, 1]`.
    ///
    /// # Panics
    /// If the images are not of the model's size.
    pub fn encode(&self, x: Tensor<B, 2>) -> DiagonalGaussian<B> {
        let [n, pixels] = x.dims();
        assert_eq!(
            pixels,
            self.rows * self.cols,
            "images of {} x {} pixels",
            self.rows,
            self.cols
        );
        let features = match (&self.mlp, &self.conv) {
            (Some(m), _) => dense_relu(&m.encode, x),
            (_, Some(c)) => {
                let grid = x.reshape([n, 1, self.rows, self.cols]);
                let h = relu(c.down2.forward(relu(c.down1.forward(grid))));
                dense_relu(&c.encode, h.flatten(1, 3))
            }
            _ => unreachable!("a VAE has an encoder"),
        };
        DiagonalGaussian::new(
            dense(&self.mean, features.clone()),
            dense(&self.log_var, features),
        )
    }

    /// The decoder's logits of the pixels for codes `[batch, latent]`, `[batch, rows * cols]`.
    pub fn decode_logits(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = z.dims()[0];
        match (&self.mlp, &self.conv) {
            (Some(m), _) => dense(&m.decode, dense_relu(&m.decode_hidden, z)),
            (_, Some(c)) => {
                let [_, c2] = CONV_CHANNELS;
                let hidden = dense_relu(&c.decode_hidden, z);
                let grid = dense_relu(&c.decode_grid, hidden).reshape([
                    n,
                    c2,
                    self.rows / 4,
                    self.cols / 4,
                ]);
                c.up2
                    .forward(relu(c.up1.forward(grid)))
                    .reshape([n, self.rows * self.cols])
            }
            _ => unreachable!("a VAE has a decoder"),
        }
    }

    /// The decoder's pixel means `sigmoid(logits)` for codes `[batch, latent]`.
    pub fn decode(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        burn::tensor::activation::sigmoid(self.decode_logits(z))
    }

    /// `−ELBO`'s terms for flattened images in `[0, 1]`, with one reparameterised sample per
    /// image (noise from the backend's generator).
    pub fn elbo(&self, x: Tensor<B, 2>) -> Elbo<B> {
        let noise = Tensor::random(
            [x.dims()[0], self.latent],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &x.device(),
        );
        self.elbo_with_noise(x, noise)
    }

    /// `−ELBO`'s terms with given noise `ε`, `[batch, latent]`: the sample is `z = μ + σ ⊙ ε`.
    ///
    /// # Panics
    /// If the noise is not `[batch, latent]`.
    pub fn elbo_with_noise(&self, x: Tensor<B, 2>, noise: Tensor<B, 2>) -> Elbo<B> {
        let q = self.encode(x.clone());
        assert_eq!(
            noise.dims(),
            q.mean.dims(),
            "noise of the latent's shape [batch, latent]"
        );
        let logits = self.decode_logits(q.reparameterise(noise));
        Elbo {
            reconstruction: self.reconstruction_nll(logits, x),
            kl: q.kl_standard(),
        }
    }

    /// The reconstruction term `−log p(x|z)` per image, `[batch]`, from the decoder's logits
    /// `l`: `Σ_i softplus(l_i) − x_i l_i`, the pixels' binary cross-entropy, finite at any
    /// logit.
    pub fn reconstruction_nll(&self, logits: Tensor<B, 2>, x: Tensor<B, 2>) -> Tensor<B, 1> {
        bernoulli_nll(logits, x)
    }

    /// Reconstructions (the decoder's means at the posterior means) of flattened images.
    pub fn reconstruct(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.decode(self.encode(x).mean)
    }

    /// `n` images decoded from codes drawn from the prior `N(0, I)`.
    pub fn sample(&self, n: usize) -> Tensor<B, 2> {
        let z = DiagonalGaussian::<B>::standard(n, self.latent, &self.device()).sample();
        self.decode(z)
    }
}

impl<B: RecurrentBackend> Objective<B> for Vae<B> {
    type Batch = ImageBatch;

    fn step(&self, batch: &ImageBatch, _: &StepInfo) -> Output<B, Self> {
        let elbo = self.elbo(batch.flat(&self.device()));
        Output::new(elbo.negative().mean(), batch.count)
            .with_part("reconstruction", elbo.reconstruction.mean())
            .with_part("kl", elbo.kl.mean())
    }
}
