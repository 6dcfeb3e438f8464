//! VHRED (Serban et al., 2017): HRED with a latent variable per response, trained as a VAE, so
//! that the same context can be answered in different ways.
//!
//! HRED ([`hred`](crate::hred)) puts every source of variation of a response into the decoder's
//! word-by-word distribution. VHRED draws, for each response `u_{n+1}`, a Gaussian latent `z_n`
//! from a prior conditioned on the context state `c_n`, and decodes conditioned on `[c_n; z_n]`:
//!
//! ```text
//! prior       p(z_n | c_n)          = N(μ_p(c_n), diag σ_p²(c_n))
//! posterior   q(z_n | c_n, u_{n+1}) = N(μ_q(c_n, v_{n+1}), diag σ_q²(·))   (v: the response's
//!                                                                          utterance vector)
//! decoder     p(u_{n+1} | z_n, c_n) = Π_t p(w_t | w_<t, c_n, z_n)
//! ```
//!
//! each of `μ`, `log σ²` an affine map of a `tanh` hidden layer. Training maximises each
//! response's evidence lower bound, with `z_n = μ_q + σ_q ⊙ ε` reparameterised
//! ([`rensa_nn::latent`]):
//!
//! ```text
//! log p(u_{n+1} | u_≤n) ≥ E_q[log p(u_{n+1} | z_n, c_n)] − KL(q(z_n | c_n, u_{n+1}) ‖ p(z_n | c_n))
//! ```
//!
//! The bound is what training sees; to compare a VHRED's likelihood with an HRED's,
//! [`Hred::importance_nll`] estimates `−log p(u_{n+1} | u_≤n)` itself from K posterior draws
//! `z_k ~ q` (Burda et al., 2016), `−log (1/K) Σ_k p(u | z_k) p(z_k | c) / q(z_k | c, u)`: a
//! bound as well, but one that tightens towards `−log p` as K grows, where the ELBO stays above
//! it by `KL(q ‖ p(z | c, u))`.
//!
//! At generation `z_n` is drawn from the prior, then decoded: different draws, different
//! responses. So what sets VHRED apart from HRED is the latent variable per response; what sets
//! it apart from a VAE is that its prior is learned and conditioned on the dialogue so far.
//!
//! **Posterior collapse.** A strong decoder can model the responses alone; the KL term then
//! pushes `q` onto `p` and `z` carries nothing (VHRED becomes HRED). Three remedies are built in
//! ([`LatentConfig`]): KL annealing (the KL weight rises from 0 to 1 over the first steps,
//! linearly or along a sigmoid, so the decoder learns to read `z` before paying for it), word
//! drop (a share of the decoder's input words replaced by `UNK`, [`HredConfig::word_drop`], so
//! the decoder cannot lean on them alone), and a bag-of-words loss (Zhao et al., 2017: `[c; z]`
//! must predict the response's words without their order). The KL per response and the active
//! latent units ([`rensa_nn::latent::active_units`]) are reported at every step.
//!
//! [`HredConfig::word_drop`]: crate::hred::HredConfig::word_drop
//! [`Hred::importance_nll`]: crate::hred::Hred::importance_nll

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Tensor, backend::Backend};
use rensa_nn::latent::DiagonalGaussian;

/// How the KL weight rises at the start of training.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum AnnealCurve {
    /// Weight 1 from the first step.
    None,
    /// `step / steps`, then 1.
    Linear,
    /// `1 / (1 + exp(−12 (step / steps − ½)))` (0.0025 at the start, ½ halfway, 0.9975 just
    /// before `steps`), then 1 from step `steps` on.
    Sigmoid,
}

impl AnnealCurve {
    /// The name on a command line: `none`, `linear`, `sigmoid`.
    pub fn name(self) -> &'static str {
        match self {
            AnnealCurve::None => "none",
            AnnealCurve::Linear => "linear",
            AnnealCurve::Sigmoid => "sigmoid",
        }
    }
}

impl std::str::FromStr for AnnealCurve {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [AnnealCurve::None, AnnealCurve::Linear, AnnealCurve::Sigmoid]
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("unknown KL annealing {s:?}: none, linear or sigmoid"))
    }
}

/// The latent variable of a VHRED: its size, networks and training remedies.
#[derive(Config, Debug)]
pub struct LatentConfig {
    /// Dimensions of `z`.
    #[config(default = 64)]
    pub size: usize,
    /// Hidden units of the prior and posterior networks.
    #[config(default = 256)]
    pub hidden: usize,
    /// The KL weight's curve.
    #[config(default = "AnnealCurve::Linear")]
    pub anneal: AnnealCurve,
    /// Optimiser steps the KL weight takes to reach 1.
    #[config(default = 5000)]
    pub anneal_steps: usize,
    /// Weight of the bag-of-words loss (0: off).
    #[config(default = 0.0)]
    pub bow_weight: f64,
}

/// The KL weight at optimiser step `step` of `curve` over `steps` steps.
pub fn kl_weight(curve: AnnealCurve, steps: usize, step: usize) -> f64 {
    if curve == AnnealCurve::None || step >= steps {
        return 1.0;
    }
    let x = step as f64 / steps as f64;
    match curve {
        AnnealCurve::Linear => x,
        _ => 1.0 / (1.0 + (-12.0 * (x - 0.5)).exp()),
    }
}

impl LatentConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// A zero size, a bag-of-words weight that is negative or not finite.
    pub fn validate(&self) -> rensa_nn::Result<()> {
        rensa_nn::at_least_one(&[
            ("latent.size", self.size),
            ("latent.hidden", self.hidden),
            ("latent.anneal_steps", self.anneal_steps),
        ])?;
        if !(self.bow_weight.is_finite() && self.bow_weight >= 0.0) {
            return Err(rensa_nn::Error::config(
                "latent.bow_weight",
                "a finite number >= 0",
                self.bow_weight,
            ));
        }
        Ok(())
    }

    /// The networks for a context state of `context` features, response vectors of `response`
    /// features and a vocabulary of `vocab` tokens.
    pub(crate) fn init<B: Backend>(
        &self,
        context: usize,
        response: usize,
        vocab: usize,
        device: &B::Device,
    ) -> rensa_nn::Result<Latent<B>> {
        self.validate()?;
        let (z, h) = (self.size, self.hidden);
        Ok(Latent {
            prior_hidden: LinearConfig::new(context, h).init(device),
            prior_out: LinearConfig::new(h, 2 * z).init(device),
            posterior_hidden: LinearConfig::new(context + response, h).init(device),
            posterior_out: LinearConfig::new(h, 2 * z).init(device),
            bow: (self.bow_weight > 0.0)
                .then(|| LinearConfig::new(context + z, vocab).init(device)),
            size: z,
            anneal: self.anneal,
            anneal_steps: self.anneal_steps,
            bow_weight: self.bow_weight,
        })
    }
}

/// The prior and posterior networks of a VHRED (and its bag-of-words head); see the
/// [module docs](self).
#[derive(Module, Debug)]
pub struct Latent<B: Backend> {
    /// `c → tanh` hidden layer of the prior.
    pub prior_hidden: Linear<B>,
    /// The prior's `(μ, log σ²)`.
    pub prior_out: Linear<B>,
    /// `[c; v] → tanh` hidden layer of the posterior.
    pub posterior_hidden: Linear<B>,
    /// The posterior's `(μ, log σ²)`.
    pub posterior_out: Linear<B>,
    /// `[c; z] →` logits over the vocabulary (the bag-of-words loss), when it is on.
    pub bow: Option<Linear<B>>,
    /// Dimensions of `z`.
    #[module(skip)]
    pub size: usize,
    /// The KL weight's curve.
    #[module(skip)]
    pub anneal: AnnealCurve,
    /// Steps of the KL annealing.
    #[module(skip)]
    pub anneal_steps: usize,
    /// Weight of the bag-of-words loss.
    #[module(skip)]
    pub bow_weight: f64,
}

impl<B: Backend> Latent<B> {
    fn gaussian(
        &self,
        x: Tensor<B, 2>,
        hidden: &Linear<B>,
        out: &Linear<B>,
    ) -> DiagonalGaussian<B> {
        let params = out.forward(hidden.forward(x).tanh());
        let z = self.size;
        DiagonalGaussian::new(params.clone().narrow(1, 0, z), params.narrow(1, z, z))
    }

    /// `p(z | c)` for context states `[rows, context]`.
    pub fn prior(&self, context: Tensor<B, 2>) -> DiagonalGaussian<B> {
        self.gaussian(context, &self.prior_hidden, &self.prior_out)
    }

    /// `q(z | c, v)` for context states and the responses' utterance vectors.
    pub fn posterior(&self, context: Tensor<B, 2>, response: Tensor<B, 2>) -> DiagonalGaussian<B> {
        self.gaussian(
            Tensor::cat(vec![context, response], 1),
            &self.posterior_hidden,
            &self.posterior_out,
        )
    }

    /// The KL weight at optimiser step `step`.
    pub fn kl_weight(&self, step: usize) -> f64 {
        kl_weight(self.anneal, self.anneal_steps, step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_weights_rise_to_one_and_stay() {
        assert_eq!(kl_weight(AnnealCurve::None, 100, 0), 1.0);
        assert_eq!(kl_weight(AnnealCurve::Linear, 100, 25), 0.25);
        assert_eq!(kl_weight(AnnealCurve::Linear, 100, 100), 1.0);
        assert_eq!(kl_weight(AnnealCurve::Linear, 100, 10_000), 1.0);
        assert!((kl_weight(AnnealCurve::Sigmoid, 100, 50) - 0.5).abs() < 1e-12);
        assert!(kl_weight(AnnealCurve::Sigmoid, 100, 0) < 0.003);
        assert!(kl_weight(AnnealCurve::Sigmoid, 100, 99) > 0.99);
        assert_eq!("sigmoid".parse::<AnnealCurve>(), Ok(AnnealCurve::Sigmoid));
        assert!(
            "cosine"
                .parse::<AnnealCurve>()
                .unwrap_err()
                .contains("cosine")
        );
    }
}
