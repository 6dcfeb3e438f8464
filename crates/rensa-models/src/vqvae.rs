//! The VQ-VAE (van den Oord, Vinyals and Kavukcuoglu, 2017): an autoencoder whose latent is a
//! grid of entries of a learned, discrete codebook; and the autoregressive prior over those
//! codes that lets it generate.
//!
//! The encoder maps an image `x` to a grid of vectors `z_e(x)` (here `7 × 7` of `D` dimensions
//! for a `28 × 28` image). Each vector is replaced by its nearest entry of the codebook
//! `{e_1, …, e_K}`,
//!
//! ```text
//! z_q = e_k,  k = argmin_j ‖z_e − e_j‖²
//! ```
//!
//! and the decoder maps the grid `z_q` back to an image `x̂`. The argmin has no gradient; the
//! straight-through estimator copies the decoder's gradient from `z_q` to `z_e`. The loss is
//!
//! ```text
//! L = ‖x − x̂‖² / σ²  +  ‖sg[z_e] − e‖²  +  β ‖z_e − sg[e]‖²
//! ```
//!
//! (`sg`: stop-gradient; reconstruction as the mean squared error over the pixels divided by
//! the data's variance `σ²`; codebook and commitment terms as means over every element of the
//! grid, its entries times the `D` dimensions of a code, as Sonnet's `VectorQuantizer` takes them).
//! With exponential moving averages (`γ`, the paper's appendix) the codebook term is dropped and
//! each code follows the mean of the encoder outputs assigned to it; codes nothing picks any more
//! are re-seeded from encoder outputs ([`rensa_nn::latent::VectorQuantizer`]).
//!
//! What sets it apart from the [VAE](crate::vae): the VAE's latent is a continuous Gaussian per
//! image, regularised towards `N(0, I)` by a KL term, so decoding draws from `N(0, I)` makes new
//! images. The VQ-VAE's latent is a grid of discrete symbols and there is no KL term (with a
//! uniform prior over the codes it is a constant, `log K` per entry); to generate, a separate
//! model, [`CodePrior`], learns the distribution of the code grids of the training images,
//!
//! ```text
//! p(c) = Π_i p(c_i | c_1, …, c_{i−1})
//! ```
//!
//! over the grid in raster order (here a GRU; the paper used a PixelCNN), and its samples are
//! decoded.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{Distribution, Int, Tensor, TensorData, backend::Backend};
use rensa_data::idx::ImageBatch;
use rensa_nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use rensa_nn::dense::linear;
use rensa_nn::latent::{CodeStats, Quantized, VectorQuantizer, VectorQuantizerConfig};
use rensa_nn::recurrent::{
    Differentiation, Gru, GruConfig, RecurrentBackend, RecurrentState, SequenceInput,
};
use rensa_train::{Objective, Output, StepInfo};

/// Configuration of a [`VqVae`].
#[derive(Config, Debug)]
pub struct VqVaeConfig {
    /// Rows of an image (a multiple of 4).
    #[config(default = 28)]
    pub rows: usize,
    /// Columns of an image (a multiple of 4).
    #[config(default = 28)]
    pub cols: usize,
    /// Channels of the encoder's and decoder's hidden layers.
    #[config(default = 64)]
    pub hidden: usize,
    /// The quantiser: codes `K`, their size `D`, `β`, EMA and re-seeding.
    #[config(default = "VectorQuantizerConfig::new(512, 64)")]
    pub quantizer: VectorQuantizerConfig,
    /// `σ²`, the variance of the training pixels: the reconstruction error is divided by it, so
    /// that it weighs against the codebook terms independently of the data's scale.
    #[config(default = 1.0)]
    pub data_variance: f64,
}

impl VqVaeConfig {
    /// Checks the sizes.
    ///
    /// # Errors
    /// A zero size, sides that are not multiples of 4, a variance that is not positive and
    /// finite, or a bad quantiser configuration.
    pub fn validate(&self) -> rensa_nn::Result<()> {
        rensa_nn::at_least_one(&[
            ("rows", self.rows),
            ("cols", self.cols),
            ("hidden", self.hidden),
        ])?;
        crate::quarter_sides(self.rows, self.cols)?;
        if !(self.data_variance.is_finite() && self.data_variance > 0.0) {
            return Err(rensa_nn::Error::config(
                "data_variance",
                "a finite number > 0",
                self.data_variance,
            ));
        }
        self.quantizer.validate()
    }

    /// Builds the model (PyTorch's initialisation for the convolutions), drawn now from the
    /// backend's generator.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn init<B: RecurrentBackend>(&self, device: &B::Device) -> rensa_nn::Result<VqVae<B>> {
        self.validate()?;
        let (h, d) = (self.hidden, self.quantizer.dim);
        let c1 = (h / 2).max(1);
        let conv = |i, o, k, s, p| {
            Conv2dConfig::new([i, o], [k, k])
                .with_stride([s, s])
                .with_padding([p, p])
                .init(device)
        };
        let up = |i, o| {
            ConvTranspose2dConfig::new([i, o], [4, 4])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .init(device)
        };
        Ok(VqVae {
            encoder: [
                conv(1, c1, 4, 2, 1)?,
                conv(c1, h, 4, 2, 1)?,
                conv(h, h, 3, 1, 1)?,
                conv(h, d, 1, 1, 0)?,
            ],
            quantizer: self.quantizer.init(device)?,
            decode_in: conv(d, h, 3, 1, 1)?,
            decode_up: [up(h, c1)?, up(c1, 1)?],
            rows: self.rows,
            cols: self.cols,
            data_variance: self.data_variance,
        })
    }
}

/// A VQ-VAE over grey images (see the [module docs](self)). Built by [`VqVaeConfig`].
///
/// Encoder: `4×4 stride-2 conv (hidden/2) → ReLU → 4×4 stride-2 conv (hidden) → ReLU → 3×3 conv
/// → ReLU → 1×1 conv (D)`; decoder: `3×3 conv (hidden) → ReLU → 4×4 stride-2 transposed conv
/// (hidden/2) → ReLU → 4×4 stride-2 transposed conv (1)`, whose output is the reconstruction.
#[derive(Module, Debug)]
pub struct VqVae<B: Backend> {
    encoder: [Conv2d<B>; 4],
    /// The codebook and its statistics.
    pub quantizer: VectorQuantizer<B>,
    decode_in: Conv2d<B>,
    decode_up: [ConvTranspose2d<B>; 2],
    rows: usize,
    cols: usize,
    data_variance: f64,
}

/// What [`VqVae::forward`] returns.
#[derive(Clone, Debug)]
pub struct VqVaeOutput<B: Backend> {
    /// The reconstructions `[N, 1, rows, cols]`.
    pub reconstruction: Tensor<B, 4>,
    /// The quantiser's codes, losses and statistics (codes `[N · h · w]` in raster order).
    pub quantized: Quantized<B>,
    /// The reconstruction term, `mean (x − x̂)² / σ²`.
    pub reconstruction_loss: Tensor<B, 1>,
}

impl<B: Backend> VqVaeOutput<B> {
    /// The whole loss: reconstruction + the quantiser's codebook and commitment terms.
    pub fn loss(&self) -> Tensor<B, 1> {
        self.reconstruction_loss.clone() + self.quantized.loss.clone()
    }
}

impl<B: RecurrentBackend> VqVae<B> {
    /// Pixels of an image, `(rows, cols)`.
    pub fn image_size(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The code grid's `(rows, cols)`.
    pub fn grid_size(&self) -> (usize, usize) {
        (self.rows / 4, self.cols / 4)
    }

    /// Codes in the codebook `K`.
    pub fn codes(&self) -> usize {
        self.quantizer.codes()
    }

    /// The encoder's four convolutions, input first.
    pub fn encoder(&self) -> &[Conv2d<B>; 4] {
        &self.encoder
    }

    /// `z_e(x)` of images `[N, 1, rows, cols]` in `[0, 1]`: `[N, D, rows / 4, cols / 4]`.
    ///
    /// # Panics
    /// If the images are not of the model's size.
    pub fn encode(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, channels, rows, cols] = x.dims();
        assert_eq!(
            (channels, rows, cols),
            (1, self.rows, self.cols),
            "grey images of {} x {} pixels, [N, 1, rows, cols]",
            self.rows,
            self.cols
        );
        let [a, b, c, d] = &self.encoder;
        d.forward(relu(c.forward(relu(b.forward(relu(a.forward(x)))))))
    }

    /// The decoder's images `[N, 1, rows, cols]` from a quantised grid `[N, D, h, w]`.
    pub fn decode(&self, z_q: Tensor<B, 4>) -> Tensor<B, 4> {
        let [a, b] = &self.decode_up;
        b.forward(relu(a.forward(relu(self.decode_in.forward(z_q)))))
    }

    /// The codes of images `[N, 1, rows, cols]`: `[N, rows / 4, cols / 4]`.
    pub fn codes_of(&self, x: Tensor<B, 4>) -> Tensor<B, 3, Int> {
        let z = self.encode(x);
        let [n, _, h, w] = z.dims();
        let (_, q) = self.quantizer.forward_grid(z);
        q.indices.reshape([n, h, w])
    }

    /// Images decoded from code grids `[N, h, w]`.
    pub fn decode_codes(&self, codes: Tensor<B, 3, Int>) -> Tensor<B, 4> {
        self.decode(self.quantizer.lookup_grid(codes))
    }

    /// Encode, quantise, decode, and the loss terms, for images `[N, 1, rows, cols]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> VqVaeOutput<B> {
        let (z_q, quantized) = self.quantizer.forward_grid(self.encode(x.clone()));
        let reconstruction = self.decode(z_q);
        let reconstruction_loss = (reconstruction.clone() - x)
            .powi_scalar(2)
            .mean()
            .div_scalar(self.data_variance);
        VqVaeOutput {
            reconstruction,
            quantized,
            reconstruction_loss,
        }
    }

    /// The model after a training step's codebook update (EMA, usage, re-seeding) from the
    /// step's statistics.
    pub fn update_codebook(self, stats: &CodeStats<B>) -> Self {
        Self {
            quantizer: self.quantizer.update(stats),
            ..self
        }
    }
}

impl<B: RecurrentBackend> Objective<B> for VqVae<B> {
    type Batch = ImageBatch;

    fn step(&self, batch: &ImageBatch, at: &StepInfo) -> Output<B, Self> {
        let out = self.forward(batch.grid(&self.quantizer.codebook.val().device()));
        let q = &out.quantized;
        let mut output = Output::new(out.loss(), batch.count)
            .with_part("reconstruction", out.reconstruction_loss.clone())
            .with_part("codebook", q.codebook_loss.clone())
            .with_part("commitment", q.commitment_loss.clone());
        if at.training {
            let stats = q.stats.clone();
            output = output.with_update(move |model: Self| model.update_codebook(&stats));
        }
        output
    }
}

/// Configuration of a [`CodePrior`].
#[derive(Config, Debug)]
pub struct CodePriorConfig {
    /// Codes `K` (the VQ-VAE's codebook size).
    pub codes: usize,
    /// Width of a code's embedding.
    #[config(default = 64)]
    pub embedding: usize,
    /// Hidden units of the GRU.
    #[config(default = 256)]
    pub hidden: usize,
    /// Stacked GRU layers.
    #[config(default = 1)]
    pub layers: usize,
}

impl CodePriorConfig {
    /// Builds the prior (Keras's initialisation for the GRU, burn's for the embedding and the
    /// output layer), drawn now from the backend's generator.
    ///
    /// # Errors
    /// A zero size.
    pub fn init<B: RecurrentBackend>(&self, device: &B::Device) -> rensa_nn::Result<CodePrior<B>> {
        rensa_nn::at_least_one(&[
            ("codes", self.codes),
            ("embedding", self.embedding),
            ("hidden", self.hidden),
            ("layers", self.layers),
        ])?;
        Ok(rensa_nn::init::materialise(CodePrior {
            // one extra symbol: the start of a grid
            embedding: EmbeddingConfig::new(self.codes + 1, self.embedding).init(device),
            gru: GruConfig::new(self.embedding, self.hidden)
                .with_num_layers(self.layers)
                .init(device)?,
            output: LinearConfig::new(self.hidden, self.codes).init(device),
            codes: self.codes,
        }))
    }
}

/// An autoregressive prior over code grids in raster order: `p(c_i | c_<i)` from a GRU over the
/// embedded previous codes (a start symbol first). See the [module docs](self).
#[derive(Module, Debug)]
pub struct CodePrior<B: Backend> {
    embedding: Embedding<B>,
    gru: Gru<B>,
    output: Linear<B>,
    codes: usize,
}

/// A batch of code grids flattened in raster order, `[N, L]` codes in `0..K`.
#[derive(Clone, Debug)]
pub struct CodeBatch {
    /// Grids in the batch.
    pub count: usize,
    /// Codes per grid.
    pub length: usize,
    /// `count · length` codes, grid after grid.
    pub codes: Vec<u32>,
}

impl CodeBatch {
    /// A batch of grids, each `length` codes.
    ///
    /// # Panics
    /// If there is no grid, a grid has no code, or the grids are not all of one length.
    pub fn of(grids: &[&Vec<u32>]) -> Self {
        let length = grids.first().expect("a batch of at least one grid").len();
        assert!(length > 0, "code grids of at least one code");
        assert!(
            grids.iter().all(|g| g.len() == length),
            "code grids of one length"
        );
        Self {
            count: grids.len(),
            length,
            codes: grids.iter().flat_map(|g| g.iter().copied()).collect(),
        }
    }

    fn tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2, Int> {
        let v: Vec<i64> = self.codes.iter().map(|&c| i64::from(c)).collect();
        Tensor::from_data(TensorData::new(v, [self.count, self.length]), device)
    }
}

impl<B: RecurrentBackend> CodePrior<B> {
    /// Codes `K`.
    pub fn codes(&self) -> usize {
        self.codes
    }

    fn device(&self) -> B::Device {
        self.output.weight.val().device()
    }

    /// The log-probabilities of every next code, `[N, L, K]`, for grids `[N, L]`: position `i`
    /// conditions on codes `0..i`.
    ///
    /// The codes must be below `K`: they are not read back to be checked (a device sync per
    /// step); the training step (`Objective::step`) checks its batches on the host.
    ///
    /// # Panics
    /// If the grids have no code (`L = 0`).
    pub fn log_probs(&self, codes: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [n, l] = codes.dims();
        assert!(l > 0, "code grids [N, L] with L >= 1, got L = 0");
        let start = Tensor::<B, 2, Int>::full([n, 1], self.codes as i64, &codes.device());
        let inputs = Tensor::cat(vec![start, codes.slice([0..n, 0..l - 1])], 1);
        let hidden = self
            .gru
            .forward(SequenceInput::new(self.embedding.forward(inputs)))
            .output;
        log_softmax(linear(hidden, &self.output, Differentiation::Fused), 2)
    }

    /// `−log p(c)` of each grid `[N, L]`, in nats, `[N]`.
    pub fn neg_log_likelihood(&self, codes: Tensor<B, 2, Int>) -> Tensor<B, 1> {
        let [n, l] = codes.dims();
        let log_probs = self.log_probs(codes.clone());
        log_probs
            .gather(2, codes.reshape([n, l, 1]))
            .sum_dim(1)
            .reshape([n])
            .neg()
    }

    /// `n` grids of `length` codes drawn from the prior (ancestral sampling at temperature
    /// `temperature`; noise from the backend's generator), `[n, length]`.
    ///
    /// # Panics
    /// If the temperature is not positive.
    pub fn sample(&self, n: usize, length: usize, temperature: f64) -> Tensor<B, 2, Int> {
        assert!(temperature > 0.0, "a temperature > 0");
        let device = self.device();
        let mut state: RecurrentState<B> = self.gru.zero_state(n, &device);
        let mut previous = Tensor::<B, 1, Int>::full([n], self.codes as i64, &device);
        let width = self.embedding.weight.dims()[1];
        let mut drawn = Vec::with_capacity(length);
        for _ in 0..length {
            let x = self
                .embedding
                .forward(previous.reshape([n, 1]))
                .reshape([n, width]);
            let (h, next) = self.gru.step(x, state);
            state = next;
            let logits = self.output.forward(h).div_scalar(temperature);
            // Gumbel-max: argmax(logits + G) with G = −log(−log U) is a draw from softmax(logits)
            let u =
                Tensor::<B, 2>::random(logits.dims(), Distribution::Uniform(1e-10, 1.0), &device);
            let code = (logits - u.log().neg().log()).argmax(1).reshape([n]);
            drawn.push(code.clone().reshape([n, 1]));
            previous = code;
        }
        Tensor::cat(drawn, 1)
    }
}

impl<B: RecurrentBackend> Objective<B> for CodePrior<B> {
    type Batch = CodeBatch;

    /// The mean negative log-likelihood per code, in nats.
    ///
    /// # Panics
    /// If a code of the batch is not below `K`.
    fn step(&self, batch: &CodeBatch, _: &StepInfo) -> Output<B, Self> {
        if let Some(&code) = batch.codes.iter().find(|&&c| c as usize >= self.codes) {
            panic!(
                "code {code} in a batch for a prior over {} codes (0..{})",
                self.codes, self.codes
            );
        }
        let nll = self.neg_log_likelihood(batch.tensor(&self.device()));
        Output::new(nll.mean().div_scalar(batch.length as f64), batch.count)
    }
}
