//! Adam as one fused pass per parameter tensor.
//!
//! Adam (Kingma & Ba, 2015) keeps two moving averages per weight, of the gradient and of its
//! square, and steps by their bias-corrected ratio:
//!
//! ```text
//! m ← β₁ m + (1 − β₁) g          v ← β₂ v + (1 − β₂) g²
//! m̂ = m / (1 − β₁ᵗ)              v̂ = v / (1 − β₂ᵗ)
//! θ ← θ − lr · m̂ / (√v̂ + ε)
//! ```
//!
//! [`FusedAdam`] is burn's `Adam` with the same settings, the same state (its record is burn's
//! `AdamState`, so checkpoints move between the two) and the same arithmetic in the same order,
//! but each parameter tensor's step is one [`RecurrentBackend::adam_step`]: on ndarray a single
//! vectorised pass that updates the weights and both moments in place, where burn's is about
//! thirteen tensor operations, each a pass over memory into a new buffer. On other backends the
//! step is burn's tensor operations.
//!
//! ```
//! use burn::backend::{Autodiff, NdArray};
//! use burn::nn::{Linear, LinearConfig};
//! use burn::optim::{GradientsParams, Optimizer};
//! use burn::tensor::Tensor;
//! use rensa_nn::optim::FusedAdamConfig;
//!
//! type B = Autodiff<NdArray>;
//! let device = Default::default();
//! let mut model: Linear<B> = LinearConfig::new(4, 2).init(&device);
//! let mut adam = FusedAdamConfig::new().init();
//! let x = Tensor::<B, 2>::ones([3, 4], &device);
//! let loss = model.forward(x).powi_scalar(2).sum();
//! let grads = GradientsParams::from_grads(loss.backward(), &model);
//! model = adam.step(1e-3, model, grads);
//! ```

use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{
    AdamState, AdaptiveMomentumState, LearningRate, SimpleOptimizer, adaptor::OptimizerAdaptor,
};
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;

use crate::recurrent::{AdamStep, RecurrentBackend};

/// The settings of [`FusedAdam`], with burn's `AdamConfig`'s defaults (`β₁` 0.9, `β₂` 0.999,
/// `ε` 1e-5) and options (weight decay, gradient clipping). AMSGrad is not offered.
#[derive(Config, Debug)]
pub struct FusedAdamConfig {
    /// The first moment's decay `β₁`.
    #[config(default = 0.9)]
    pub beta_1: f32,
    /// The second moment's decay `β₂`.
    #[config(default = 0.999)]
    pub beta_2: f32,
    /// `ε` of the denominator `√v̂ + ε`.
    #[config(default = 1e-5)]
    pub epsilon: f32,
    /// An L2 penalty added to the gradient (burn's weight decay: `penalty · θ + g`).
    pub weight_decay: Option<WeightDecayConfig>,
    /// Gradient clipping (by value or by norm, per parameter tensor, before the step).
    pub grad_clipping: Option<GradientClippingConfig>,
}

impl FusedAdamConfig {
    /// The optimizer of a module on an autodiff backend, as `AdamConfig::init`.
    pub fn init<B, M>(&self) -> OptimizerAdaptor<FusedAdam, M, B>
    where
        B: AutodiffBackend,
        B::InnerBackend: RecurrentBackend,
        M: AutodiffModule<B>,
    {
        let mut optim = OptimizerAdaptor::from(FusedAdam {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay.as_ref().map(|w| w.penalty),
        });
        if let Some(clipping) = &self.grad_clipping {
            optim = optim.with_grad_clipping(clipping.init());
        }
        optim
    }
}

/// Adam whose per-tensor step is [`RecurrentBackend::adam_step`] (see the [module](self)).
#[derive(Clone, Debug)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: Option<f32>,
}

impl<B: RecurrentBackend> SimpleOptimizer<B> for FusedAdam {
    type State<const D: usize> = AdamState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        // burn starts the moments at (1 − β) g and (1 − β) g², which is one step from zero
        let (time, m, v) = match state {
            Some(AdamState { momentum }) => {
                (momentum.time + 1, momentum.moment_1, momentum.moment_2)
            }
            None => (
                1,
                Tensor::zeros(tensor.dims(), &tensor.device()),
                Tensor::zeros(tensor.dims(), &tensor.device()),
            ),
        };
        let step = AdamStep {
            lr,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay,
            time,
        };
        let [param, m, v] = B::adam_step(tensor, grad, m, v, step);
        (
            param,
            Some(AdamState::new(AdaptiveMomentumState::new(time, m, v))),
        )
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}
