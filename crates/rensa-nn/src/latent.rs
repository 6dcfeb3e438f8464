//! Latent layers of generative models: a Gaussian latent with the reparameterisation trick
//! (VAE, VHRED) and a vector quantiser with a discrete codebook (VQ-VAE).
//!
//! # Gaussian latent
//!
//! A VAE's encoder outputs a distribution, not a point: a diagonal Gaussian
//! `q(z|x) = N(μ, diag σ²)`, given as `μ` and `log σ²` ([`DiagonalGaussian`]). A sample is drawn
//! as a differentiable function of the parameters and independent noise (Kingma and Welling's
//! reparameterisation):
//!
//! ```text
//! z = μ + σ ⊙ ε,   ε ~ N(0, I),   σ = exp(½ log σ²)
//! ```
//!
//! and the loss is the negative evidence lower bound: the reconstruction term plus the KL
//! divergence of `q` from the prior, in closed form for two diagonal Gaussians:
//!
//! ```text
//! KL(q ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)
//! KL(q ‖ p)       = ½ Σ_j (log σ_p,j² − log σ_q,j² + (σ_q,j² + (μ_q,j − μ_p,j)²) / σ_p,j² − 1)
//! ```
//!
//! (the second for a learned prior, such as VHRED's `p(z | context)`). [`active_units`] counts the
//! latent dimensions the encoder uses (Burda et al.): those whose mean varies across inputs,
//! the measure of posterior collapse.
//!
//! # Vector quantiser
//!
//! A VQ-VAE's latent is discrete (van den Oord et al., 2017): each encoder output `z_e` is
//! replaced by its nearest code of a learned codebook `e_1 … e_K`:
//!
//! ```text
//! k = argmin_j ‖z_e − e_j‖²,     z_q = e_k
//! ```
//!
//! The argmin has no gradient; the straight-through estimator copies the decoder's gradient at
//! `z_q` to `z_e` (`z_q = z_e + sg[e_k − z_e]`, `sg` stopping the gradient). Two losses pull the
//! codes and the encoder together:
//!
//! ```text
//! codebook loss    ‖sg[z_e] − e_k‖²      moves the code towards the encoder outputs
//! commitment loss  β ‖z_e − sg[e_k]‖²    keeps the encoder near its code (β = 0.25)
//! ```
//!
//! (each a mean over the elements, as DeepMind's Sonnet computes them). With exponential moving
//! averages (the paper's appendix) the codebook is not learned by the gradient but set after each
//! step from the outputs assigned to each code, with decay `γ` and Laplace smoothing `ε`:
//!
//! ```text
//! N_k ← γ N_k + (1 − γ) n_k                m_k ← γ m_k + (1 − γ) Σ_{i→k} z_e,i
//! Ñ_k = (N_k + ε) / (n + K ε) · n,  n = Σ_k N_k         e_k = m_k / Ñ_k
//! ```
//!
//! and the loss is only the commitment term. Codes that no output picks stop learning (codebook
//! collapse); re-seeding sets a code whose running usage falls below a threshold to a random
//! encoder output of the current batch. [`CodeUsage`] counts the codes used and the codebook's
//! perplexity `exp(−Σ_k p_k log p_k)` (K when every code is used equally, 1 when one code is).

use burn::config::Config;
use burn::module::{Module, Param, ParamId};
use burn::tensor::{Distribution, ElementConversion, Int, Tensor, backend::Backend};

use crate::Error;

/// A diagonal Gaussian per row: `[batch, latent]` means and log-variances.
#[derive(Clone, Debug)]
pub struct DiagonalGaussian<B: Backend> {
    /// `μ`, `[batch, latent]`.
    pub mean: Tensor<B, 2>,
    /// `log σ²`, `[batch, latent]`.
    pub log_var: Tensor<B, 2>,
}

impl<B: Backend> DiagonalGaussian<B> {
    /// The distribution with these parameters.
    ///
    /// # Panics
    /// If the shapes differ.
    pub fn new(mean: Tensor<B, 2>, log_var: Tensor<B, 2>) -> Self {
        assert_eq!(
            mean.dims(),
            log_var.dims(),
            "mean and log-variance of one shape"
        );
        Self { mean, log_var }
    }

    /// The standard normal `N(0, I)` of `[batch, latent]`.
    pub fn standard(batch: usize, latent: usize, device: &B::Device) -> Self {
        Self::new(
            Tensor::zeros([batch, latent], device),
            Tensor::zeros([batch, latent], device),
        )
    }

    /// `σ = exp(½ log σ²)`.
    pub fn std(&self) -> Tensor<B, 2> {
        self.log_var.clone().mul_scalar(0.5).exp()
    }

    /// `μ + σ ⊙ ε` for given noise `ε` of the same shape: differentiable in `μ` and `log σ²`.
    pub fn reparameterise(&self, noise: Tensor<B, 2>) -> Tensor<B, 2> {
        self.mean.clone() + self.std() * noise
    }

    /// A reparameterised sample, `ε` drawn from the backend's generator.
    pub fn sample(&self) -> Tensor<B, 2> {
        let noise = Tensor::random(
            self.mean.shape(),
            Distribution::Normal(0.0, 1.0),
            &self.mean.device(),
        );
        self.reparameterise(noise)
    }

    /// `KL(self ‖ N(0, I))` per row, `[batch]`, in nats.
    pub fn kl_standard(&self) -> Tensor<B, 1> {
        let var = self.log_var.clone().exp();
        let terms = self.mean.clone().powi_scalar(2) + var - self.log_var.clone() - 1.0;
        terms.sum_dim(1).squeeze_dim(1).mul_scalar(0.5)
    }

    /// `KL(self ‖ prior)` per row, `[batch]`, in nats.
    ///
    /// # Panics
    /// If the shapes differ.
    pub fn kl(&self, prior: &DiagonalGaussian<B>) -> Tensor<B, 1> {
        assert_eq!(
            self.mean.dims(),
            prior.mean.dims(),
            "KL between Gaussians of one shape"
        );
        // σ_q²/σ_p² as the exponential of a difference and (μ_q − μ_p)²/σ_p² as the square of
        // (μ_q − μ_p)·e^{−½ log σ_p²}: no division by a variance that underflows to 0 (log σ_p²
        // below about −87 in f32), and 0 where the means agree (finite for log σ_p² > −176)
        let log_ratio = self.log_var.clone() - prior.log_var.clone();
        let scaled =
            (self.mean.clone() - prior.mean.clone()) * prior.log_var.clone().mul_scalar(-0.5).exp();
        let terms = log_ratio.clone().neg() + log_ratio.exp() + scaled.powi_scalar(2) - 1.0;
        terms.sum_dim(1).squeeze_dim(1).mul_scalar(0.5)
    }

    /// `log N(x; μ, σ²)` per row, `[batch]`, in nats.
    pub fn log_prob(&self, x: Tensor<B, 2>) -> Tensor<B, 1> {
        let latent = x.dims()[1] as f64;
        let z = (x - self.mean.clone()) / self.std();
        let terms = z.powi_scalar(2) + self.log_var.clone();
        terms
            .sum_dim(1)
            .squeeze_dim(1)
            .mul_scalar(-0.5)
            .sub_scalar(0.5 * latent * (2.0 * std::f64::consts::PI).ln())
    }
}

/// Latent dimensions in use: those whose posterior mean varies across inputs by more than
/// `threshold` (variance over the rows of `means`, `[inputs, latent]`; Burda et al. use 0.01).
/// A VAE or VHRED whose posterior collapsed uses none.
///
/// # Panics
/// With fewer than two inputs, whose variance is undefined (it would read as 0 units).
pub fn active_units<B: Backend>(means: Tensor<B, 2>, threshold: f64) -> usize {
    let inputs = means.dims()[0];
    assert!(
        inputs >= 2,
        "active units need at least two inputs to vary over, got {inputs}"
    );
    let variance = means.var(0);
    variance
        .greater_elem(threshold)
        .int()
        .sum()
        .into_scalar()
        .elem::<i64>() as usize
}

/// Configuration of a [`VectorQuantizer`].
#[derive(Config, Debug)]
pub struct VectorQuantizerConfig {
    /// Codes in the codebook, `K`.
    pub codes: usize,
    /// Size of a code and of an encoder output, `D`.
    pub dim: usize,
    /// `β`, the weight of the commitment loss.
    #[config(default = 0.25)]
    pub commitment: f64,
    /// `γ`: update the codebook by exponential moving averages with this decay instead of by
    /// the gradient of the codebook loss (`None`).
    #[config(default = "None")]
    pub ema_decay: Option<f64>,
    /// `ε`, the Laplace smoothing of the EMA cluster sizes.
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Re-seed a code from a random encoder output of the batch when its running usage (the
    /// moving average of outputs assigned to it per step, decay `usage_decay`) falls below
    /// this; `None`: never.
    #[config(default = "None")]
    pub reseed_below: Option<f64>,
    /// Decay of the running usage that re-seeding reads.
    #[config(default = 0.99)]
    pub usage_decay: f64,
}

impl VectorQuantizerConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// Fewer than two codes, a zero size, a negative or non-finite `β`, a decay outside
    /// `(0, 1)`, an `ε` that is not positive, a negative threshold, re-seeding without EMA.
    pub fn validate(&self) -> crate::Result<()> {
        // one code would quantise everything to it: nothing to choose between
        if self.codes < 2 {
            return Err(Error::config("codes", "at least 2", self.codes));
        }
        if self.dim == 0 {
            return Err(Error::config("dim", "at least 1", 0));
        }
        if !(self.commitment.is_finite() && self.commitment >= 0.0) {
            return Err(Error::config(
                "commitment",
                "a finite number >= 0",
                self.commitment,
            ));
        }
        for (field, decay) in [
            ("ema_decay", self.ema_decay.unwrap_or(0.5)),
            ("usage_decay", self.usage_decay),
        ] {
            if !(decay > 0.0 && decay < 1.0) {
                return Err(Error::config(field, "in (0, 1)", decay));
            }
        }
        // with ε = 0 a code nothing picks decays to a cluster size of exactly 0 (f32 underflow,
        // ~10,000 steps at γ = 0.99) and its EMA update divides 0 by 0
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(Error::config(
                "epsilon",
                "a finite number > 0",
                self.epsilon,
            ));
        }
        if let Some(t) = self.reseed_below {
            if !(t.is_finite() && t >= 0.0) {
                return Err(Error::config("reseed_below", "a finite number >= 0", t));
            }
            // a gradient-trained code replaced in place would keep the optimiser's moments of
            // the code it replaced, which move the fresh code away at the next step
            if self.ema_decay.is_none() {
                return Err(Error::config(
                    "reseed_below",
                    "None unless ema_decay is set (re-seeding needs the EMA codebook)",
                    t,
                ));
            }
        }
        Ok(())
    }

    /// Builds the quantiser; the codes are drawn uniformly on `[−1/K, 1/K)` (the paper's
    /// reference code).
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn init<B: Backend>(&self, device: &B::Device) -> crate::Result<VectorQuantizer<B>> {
        self.validate()?;
        let bound = 1.0 / self.codes as f64;
        let codebook = Tensor::random(
            [self.codes, self.dim],
            Distribution::Uniform(-bound, bound),
            device,
        );
        self.with_codebook(codebook)
    }

    /// The quantiser with a given `[K, D]` codebook.
    ///
    /// # Errors
    /// As [`validate`](Self::validate), and a codebook that is not `[codes, dim]`.
    pub fn with_codebook<B: Backend>(
        &self,
        codebook: Tensor<B, 2>,
    ) -> crate::Result<VectorQuantizer<B>> {
        self.validate()?;
        let dims = codebook.dims();
        if dims != [self.codes, self.dim] {
            return Err(Error::config(
                "codebook",
                "a [codes, dim] tensor",
                format!("{dims:?} for {} codes of size {}", self.codes, self.dim),
            ));
        }
        let device = codebook.device();
        let state = |t: Tensor<B, 2>| Param::initialized(ParamId::new(), t).set_require_grad(false);
        let ema = self.ema_decay.is_some();
        Ok(VectorQuantizer {
            codebook: if ema {
                state(codebook.clone())
            } else {
                Param::from_tensor(codebook.clone())
            },
            // the moving averages start from the codebook with a cluster size of 1, so that a code
            // nothing picks yet keeps its place
            cluster_size: state(Tensor::ones([1, self.codes], &device)),
            cluster_sum: state(codebook),
            usage: state(Tensor::ones([1, self.codes], &device)),
            codes: self.codes,
            dim: self.dim,
            commitment: self.commitment,
            ema_decay: self.ema_decay,
            epsilon: self.epsilon,
            reseed_below: self.reseed_below,
            usage_decay: self.usage_decay,
        })
    }
}

/// A vector quantiser: nearest code, straight-through gradient, codebook and commitment losses,
/// optional EMA codebook updates and dead-code re-seeding (see the [module docs](self)).
///
/// The EMA statistics and the running usage are module state (saved in records and checkpoints)
/// that no gradient reaches; [`VectorQuantizer::update`] advances them after a training step.
#[derive(Module, Debug)]
pub struct VectorQuantizer<B: Backend> {
    /// The codes, `[K, D]`.
    pub codebook: Param<Tensor<B, 2>>,
    /// EMA cluster sizes `N_k`, `[1, K]`.
    cluster_size: Param<Tensor<B, 2>>,
    /// EMA sums of the assigned outputs `m_k`, `[K, D]`.
    cluster_sum: Param<Tensor<B, 2>>,
    /// Moving average of the outputs assigned to each code per step, `[1, K]`.
    usage: Param<Tensor<B, 2>>,
    codes: usize,
    dim: usize,
    commitment: f64,
    ema_decay: Option<f64>,
    epsilon: f64,
    reseed_below: Option<f64>,
    usage_decay: f64,
}

/// What [`VectorQuantizer::forward`] returns.
#[derive(Clone, Debug)]
pub struct Quantized<B: Backend> {
    /// `z_q` with the straight-through gradient to the input, `[N, D]`.
    pub quantized: Tensor<B, 2>,
    /// The chosen code of each row, `[N]`.
    pub indices: Tensor<B, 1, Int>,
    /// `mean ‖sg[z_e] − e_k‖²` (reported, and trained on only without EMA).
    pub codebook_loss: Tensor<B, 1>,
    /// `mean ‖z_e − sg[e_k]‖²`, before the weight `β`.
    pub commitment_loss: Tensor<B, 1>,
    /// The loss to add to the model's: `codebook + β · commitment`, or `β · commitment` with
    /// EMA.
    pub loss: Tensor<B, 1>,
    /// What [`VectorQuantizer::update`] needs, detached from the graph.
    pub stats: CodeStats<B>,
}

/// A batch's assignments, for the EMA and usage updates: counts `n_k` `[1, K]`, sums of the
/// assigned outputs `[K, D]`, and the outputs themselves `[N, D]` (re-seeding draws from them).
#[derive(Clone, Debug)]
pub struct CodeStats<B: Backend> {
    /// `n_k`, `[1, K]`.
    pub counts: Tensor<B, 2>,
    /// `Σ_{i→k} z_e,i`, `[K, D]`.
    pub sums: Tensor<B, 2>,
    /// The batch's encoder outputs, `[N, D]`.
    pub inputs: Tensor<B, 2>,
}

impl<B: Backend> VectorQuantizer<B> {
    /// Codes `K`.
    pub fn codes(&self) -> usize {
        self.codes
    }

    /// Code size `D`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether the codebook follows moving averages (not the gradient).
    pub fn is_ema(&self) -> bool {
        self.ema_decay.is_some()
    }

    /// The running usage of each code (outputs assigned per step, moving average), `[K]`.
    pub fn usage(&self) -> Tensor<B, 1> {
        self.usage.val().reshape([self.codes])
    }

    /// The nearest code of each row of `x`, `[N, D]` → `[N]`, without gradient.
    pub fn nearest(&self, x: Tensor<B, 2>) -> Tensor<B, 1, Int> {
        let [n, d] = x.dims();
        assert_eq!(d, self.dim, "inputs of the code size {}", self.dim);
        let e = self.codebook.val().detach();
        let x = x.detach();
        // ‖x − e‖² = ‖x‖² − 2 x·e + ‖e‖²; ‖x‖² is the same for every code
        let distances = e.clone().powi_scalar(2).sum_dim(1).reshape([1, self.codes])
            - x.matmul(e.transpose()).mul_scalar(2.0);
        distances.argmin(1).reshape([n])
    }

    /// The rows of the codebook at `indices`, `[N]` → `[N, D]` (a decoder's input from codes a
    /// prior sampled). The indices must be below `K`; they are not read back to be checked (an
    /// index out of range panics on ndarray and is undefined on other backends).
    pub fn lookup(&self, indices: Tensor<B, 1, Int>) -> Tensor<B, 2> {
        self.codebook.val().select(0, indices)
    }

    /// Quantises the rows of `x`, `[N, D]`.
    ///
    /// # Panics
    /// If `x` is not `[N, dim]` with `N ≥ 1` (the losses of no row would be NaN, and a
    /// re-seeding update would have no output to draw from).
    pub fn forward(&self, x: Tensor<B, 2>) -> Quantized<B> {
        assert!(
            x.dims()[0] > 0,
            "inputs [N, {}]: expected at least one row to quantise, got 0",
            self.dim
        );
        let indices = self.nearest(x.clone());
        let e = self.lookup(indices.clone());
        let codebook_loss = (e.clone() - x.clone().detach()).powi_scalar(2).mean();
        let commitment_loss = (x.clone() - e.clone().detach()).powi_scalar(2).mean();
        let loss = if self.is_ema() {
            commitment_loss.clone().mul_scalar(self.commitment)
        } else {
            codebook_loss.clone() + commitment_loss.clone().mul_scalar(self.commitment)
        };
        let quantized = x.clone() + (e - x.clone()).detach();
        // one-hot rows by comparison with 0..K (burn's `one_hot` reads its input back to check
        // it, a device sync per step)
        let n = x.dims()[0];
        let codes = Tensor::<B, 1, Int>::arange(0..self.codes as i64, &x.device())
            .unsqueeze_dim::<2>(0)
            .expand([n, self.codes]);
        let one_hot: Tensor<B, 2> = indices
            .clone()
            .unsqueeze_dim::<2>(1)
            .expand([n, self.codes])
            .equal(codes)
            .float();
        let inputs = x.detach();
        let stats = CodeStats {
            counts: one_hot.clone().sum_dim(0),
            sums: one_hot.transpose().matmul(inputs.clone()),
            inputs,
        };
        Quantized {
            quantized,
            indices,
            codebook_loss,
            commitment_loss,
            loss,
            stats,
        }
    }

    /// Quantises a channels-first grid `[B, D, H, W]` (a convolutional encoder's output): the
    /// quantised grid of the same shape and the codes `[B, H, W]`.
    pub fn forward_grid(&self, x: Tensor<B, 4>) -> (Tensor<B, 4>, Quantized<B>) {
        let [b, d, h, w] = x.dims();
        let rows = x.permute([0, 2, 3, 1]).reshape([b * h * w, d]);
        let q = self.forward(rows);
        let grid = q
            .quantized
            .clone()
            .reshape([b, h, w, d])
            .permute([0, 3, 1, 2]);
        (grid, q)
    }

    /// The codebook rows at a grid of codes `[B, H, W]` as a channels-first grid `[B, D, H, W]`.
    pub fn lookup_grid(&self, codes: Tensor<B, 3, Int>) -> Tensor<B, 4> {
        let [b, h, w] = codes.dims();
        self.lookup(codes.reshape([b * h * w]))
            .reshape([b, h, w, self.dim])
            .permute([0, 3, 1, 2])
    }

    /// After a training step: the moving averages and, with EMA, the codebook follow the
    /// batch's assignments; codes whose running usage fell below the threshold are re-seeded
    /// from random rows of the batch's outputs (drawn with the backend's generator).
    pub fn update(self, stats: &CodeStats<B>) -> Self {
        let counts = stats.counts.clone().detach();
        let mut usage = self.usage.val().detach().mul_scalar(self.usage_decay)
            + counts.clone().mul_scalar(1.0 - self.usage_decay);
        let mut codebook = None;
        let mut cluster_size = self.cluster_size.val().detach();
        let mut cluster_sum = self.cluster_sum.val().detach();
        if let Some(gamma) = self.ema_decay {
            cluster_size = cluster_size.mul_scalar(gamma) + counts.mul_scalar(1.0 - gamma);
            cluster_sum =
                cluster_sum.mul_scalar(gamma) + stats.sums.clone().detach().mul_scalar(1.0 - gamma);
            let n = cluster_size.clone().sum().reshape([1, 1]);
            let k = self.codes as f64;
            let smoothed =
                (cluster_size.clone() + self.epsilon) / (n.clone() + k * self.epsilon) * n;
            codebook = Some(cluster_sum.clone() / smoothed.transpose());
        }
        let rows = stats.inputs.dims()[0];
        if let Some(threshold) = self.reseed_below.filter(|_| rows > 0) {
            let inputs = stats.inputs.clone().detach();
            let device = inputs.device();
            let picks = Tensor::<B, 1>::random(
                [self.codes],
                Distribution::Uniform(0.0, rows as f64),
                &device,
            )
            .floor()
            .clamp(0.0, (rows - 1) as f64)
            .int();
            let fresh = inputs.select(0, picks);
            let dead = usage.clone().lower_elem(threshold); // [1, K]
            let dead_rows = dead.clone().transpose().expand([self.codes, self.dim]);
            let current = codebook.unwrap_or_else(|| self.codebook.val().detach());
            codebook = Some(current.mask_where(dead_rows.clone(), fresh.clone()));
            // a re-seeded code starts as if one output had been assigned to it
            cluster_sum = cluster_sum.mask_where(dead_rows, fresh);
            cluster_size = cluster_size.mask_fill(dead.clone(), 1.0);
            usage = usage.mask_fill(dead, 1.0);
        }
        let replace = |p: Param<Tensor<B, 2>>, t: Tensor<B, 2>| {
            let trainable = p.val().is_require_grad();
            let (id, _, _) = p.consume();
            Param::initialized(id, t.detach().set_require_grad(trainable))
        };
        let codebook_param = match codebook {
            Some(c) => replace(self.codebook, c),
            None => self.codebook,
        };
        Self {
            codebook: codebook_param,
            cluster_size: replace(self.cluster_size, cluster_size),
            cluster_sum: replace(self.cluster_sum, cluster_sum),
            usage: replace(self.usage, usage),
            ..self
        }
    }
}

/// Counts of code assignments over many batches: the share of codes used and the codebook's
/// perplexity.
#[derive(Clone, Debug, PartialEq)]
pub struct CodeUsage {
    counts: Vec<u64>,
}

impl CodeUsage {
    /// No assignment yet, `codes` codes.
    pub fn new(codes: usize) -> Self {
        Self {
            counts: vec![0; codes],
        }
    }

    /// Counts the codes of `indices`.
    ///
    /// # Panics
    /// If an index is not below the number of codes.
    pub fn add<B: Backend, const D: usize>(&mut self, indices: Tensor<B, D, Int>) {
        let data = indices.into_data().convert::<i64>();
        for &i in data.as_slice::<i64>().expect("i64 indices") {
            self.counts[usize::try_from(i).expect("a code index")] += 1;
        }
    }

    /// Assignments per code.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Share of codes assigned at least once, in `[0, 1]`.
    pub fn used(&self) -> f64 {
        self.counts.iter().filter(|&&c| c > 0).count() as f64 / self.counts.len().max(1) as f64
    }

    /// `exp(−Σ_k p_k ln p_k)` of the assignment frequencies: the number of equally used codes
    /// that would give the same entropy (0 before any assignment).
    pub fn perplexity(&self) -> f64 {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let entropy: f64 = self
            .counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / total as f64;
                -p * p.ln()
            })
            .sum();
        entropy.exp()
    }
}
