//! Activation functions and their explicit derivatives: sigmoid `σ(x) = 1 / (1 + e⁻ˣ)`,
//! `σ'(x) = σ(x)(1 − σ(x))`; tanh, `tanh'(x) = 1 − tanh²(x)`; ReLU `max(0, x)` with its step
//! derivative; leaky ReLU `max(αx, x)`; softmax and its Jacobian-vector product.
//!
//! Every derivative here is a plain function of the *pre-activation* input `x` (the course's
//! convention: `d_sigmoid(x) = sigmoid(x) * (1 - sigmoid(x))`), plus `*_from_output` forms that
//! take the already-activated value `y`, which is what a hand-written backward pass usually has
//! at hand. Mixing the two up is the classic slip: applying `d_sigmoid` to `y = sigmoid(x)`
//! computes `sigmoid(y) * (1 - sigmoid(y))`, not the derivative.
//!
//! # tanh, five ways
//! The course lists five formulas for tanh ([`TanhFormula`]). They are equal in exact arithmetic
//! but not in floating point:
//!
//! | formula | overflows when |
//! | --- | --- |
//! | library `tanh` | never |
//! | `sinh(x) / cosh(x)` | `|x| > ln(MAX)`: 88.7 in f32, 709.8 in f64 (inf / inf = NaN) |
//! | `(eˣ - e⁻ˣ) / (eˣ + e⁻ˣ)` | `|x| > ln(MAX)`, as above |
//! | `(e²ˣ - 1) / (e²ˣ + 1)` | `x > ln(MAX) / 2`: 44.4 in f32, 354.9 in f64 |
//! | `2·sigmoid(2x) - 1` | never (but loses relative precision near 0) |
//!
//! [`tanh_formula`] evaluates each formula *as written*, so the overflow can be shown; rensa
//! itself uses [`tanh`], and [`tanh_stable_exp`] shows the fix: evaluate the exponential form
//! only on `-|x|`, where `e^(-2|x|) ≤ 1` cannot overflow, and restore the sign.
//! Both derivative forms stay finite: `1 / cosh²(x)` and `4 / (eˣ + e⁻ˣ)²` become `1 / ∞ = 0`,
//! the right limit.

use burn::config::Config;
use burn::tensor::{DType, Tensor, activation as act, backend::Backend};

/// Logistic sigmoid `1 / (1 + e⁻ˣ)`.
///
/// Evaluated as written, in the tensor's own precision (burn's `sigmoid` goes through f32, which
/// would spoil f64 gradient checks), with `x` first clamped from below at the most negative value
/// whose `e⁻ˣ` is finite in the tensor's dtype (−88 in f32, −700 in f64, −11 in f16). Unclamped,
/// `e⁻ˣ` overflows to `∞` below `x ≈ −88.7` in f32: the value is still the right limit 0, but
/// autodiff's gradient of the division becomes `∞ · 0 = NaN`. The clamp changes only results
/// that round to (subnormal) zero anyway: the sigmoid there is below 7e-39 in f32.
pub fn sigmoid<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let floor = match x.dtype() {
        DType::F64 => -700.0,
        DType::F16 => -11.0,
        _ => -88.0,
    };
    reciprocal(x.clamp_min(floor).neg().exp() + 1.0)
}

/// `1 / x` by a true division. The published burn-ndarray 0.21 (with its `simd` feature) computes
/// f32 `recip()` on buffers of 32 elements or more with the hardware reciprocal estimate (a
/// relative error up to 3.7e-4 with SSE/AVX2, 6.1e-5 with AVX-512), too coarse for exact
/// derivatives and gradient checks. This workspace patches it (`patches/README.md`); the division
/// keeps these activations exact for a user who builds against the published crate.
fn reciprocal<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.ones_like() / x
}

/// Derivative of [`sigmoid`] at the pre-activation `x`: `sigmoid(x) · (1 − sigmoid(x))`.
///
/// Its maximum is at `x = 0`:
/// ```
/// use burn::backend::NdArray;
/// use burn::tensor::Tensor;
/// let d = rensa_nn::activation::d_sigmoid(Tensor::<NdArray, 1>::from_floats([0.0], &Default::default()));
/// assert_eq!(d.into_scalar(), 0.25);
/// ```
pub fn d_sigmoid<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    d_sigmoid_from_output(sigmoid(x))
}

/// Derivative of the sigmoid written with its output `y = sigmoid(x)`: `y · (1 − y)`.
pub fn d_sigmoid_from_output<B: Backend, const D: usize>(y: Tensor<B, D>) -> Tensor<B, D> {
    y.clone() * (y.neg() + 1.0)
}

/// Hyperbolic tangent (the library form, stable for every `x`).
pub fn tanh<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.tanh()
}

/// Derivative of tanh, the course's first form: `1 / cosh²(x)`.
pub fn d_tanh<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    reciprocal(x.cosh().powi_scalar(2))
}

/// Derivative of tanh, the course's second form: `4 / (eˣ + e⁻ˣ)²`.
pub fn d_tanh_exp<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    reciprocal((x.clone().exp() + x.neg().exp()).powi_scalar(2)) * 4.0
}

/// Derivative of tanh written with its output `y = tanh(x)`: `1 − y²`.
pub fn d_tanh_from_output<B: Backend, const D: usize>(y: Tensor<B, D>) -> Tensor<B, D> {
    y.powi_scalar(2).neg() + 1.0
}

/// The five tanh formulas the course compares.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum TanhFormula {
    /// The library function (`np.tanh`).
    Library,
    /// `sinh(x) / cosh(x)`.
    SinhCosh,
    /// `(eˣ − e⁻ˣ) / (eˣ + e⁻ˣ)`.
    Exp,
    /// `(e²ˣ − 1) / (e²ˣ + 1)`.
    Exp2x,
    /// `2 · sigmoid(2x) − 1`.
    Sigmoid2x,
}

impl TanhFormula {
    /// All five, in the course's order.
    pub const ALL: [TanhFormula; 5] = [
        TanhFormula::Library,
        TanhFormula::SinhCosh,
        TanhFormula::Exp,
        TanhFormula::Exp2x,
        TanhFormula::Sigmoid2x,
    ];
}

/// Evaluates tanh with one of the course's formulas, literally (see the module docs for which
/// of them overflow).
pub fn tanh_formula<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    formula: TanhFormula,
) -> Tensor<B, D> {
    match formula {
        TanhFormula::Library => x.tanh(),
        TanhFormula::SinhCosh => x.clone().sinh() / x.cosh(),
        TanhFormula::Exp => {
            let (ep, en) = (x.clone().exp(), x.neg().exp());
            (ep.clone() - en.clone()) / (ep + en)
        }
        TanhFormula::Exp2x => {
            let e2 = (x * 2.0).exp();
            (e2.clone() - 1.0) / (e2 + 1.0)
        }
        TanhFormula::Sigmoid2x => sigmoid(x * 2.0) * 2.0 - 1.0,
    }
}

/// tanh from exponentials without overflow: `sign(x) · (1 − e^(−2|x|)) / (1 + e^(−2|x|))`.
pub fn tanh_stable_exp<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let e = (x.clone().abs() * -2.0).exp(); // in (0, 1]: never overflows
    (e.clone().neg() + 1.0) / (e + 1.0) * x.sign()
}

/// Rectified linear unit `max(0, x)`.
pub fn relu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    act::relu(x)
}

/// Derivative of ReLU as the course's first version writes it: 1 for `x > 0`, 0 for `x < 0` and
/// **NaN at `x = 0`**, where ReLU has no derivative.
pub fn d_relu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    d_piecewise(x, 1.0, 0.0, f32::NAN)
}

/// Derivative of ReLU with the subgradient 0 chosen at `x = 0` (the course's `step_function`
/// version, and what autodiff frameworks use).
pub fn d_relu_subgradient<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    d_piecewise(x, 1.0, 0.0, 0.0)
}

/// Leaky ReLU `max(alpha·x, x)` for `0 ≤ alpha < 1` (the course uses `alpha = 0.01`).
pub fn lrelu<B: Backend, const D: usize>(x: Tensor<B, D>, alpha: f64) -> Tensor<B, D> {
    act::leaky_relu(x, alpha)
}

/// Derivative of leaky ReLU, the course's first version: 1 for `x > 0`, `alpha` for `x < 0`,
/// NaN at `x = 0`.
pub fn d_lrelu<B: Backend, const D: usize>(x: Tensor<B, D>, alpha: f64) -> Tensor<B, D> {
    d_piecewise(x, 1.0, alpha as f32, f32::NAN)
}

/// Derivative of leaky ReLU with the subgradient `alpha` at `x = 0` (the course's second
/// version, `np.where(x > 0, 1, alpha)`).
pub fn d_lrelu_subgradient<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    alpha: f64,
) -> Tensor<B, D> {
    d_piecewise(x, 1.0, alpha as f32, alpha as f32)
}

/// `positive` where `x > 0`, `negative` where `x < 0`, `at_zero` where `x == 0`.
fn d_piecewise<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    positive: f32,
    negative: f32,
    at_zero: f32,
) -> Tensor<B, D> {
    let out = x.zeros_like().add_scalar(at_zero);
    let out = out.mask_fill(x.clone().greater_elem(0.0), positive);
    out.mask_fill(x.lower_elem(0.0), negative)
}

/// Softmax along `dim`, computed stably (the maximum is subtracted first).
pub fn softmax<B: Backend, const D: usize>(x: Tensor<B, D>, dim: usize) -> Tensor<B, D> {
    act::softmax(x, dim)
}

/// Softmax's Jacobian-vector product: given `y = softmax(x)` along `dim` and an upstream
/// gradient `v = ∂L/∂y`, returns `∂L/∂x = y ⊙ (v − Σ_dim y ⊙ v)`.
///
/// This is `Jᵀv` with `J = diag(y) − y yᵀ` (symmetric), computed in O(n) without forming `J`.
pub fn softmax_jvp<B: Backend, const D: usize>(
    y: Tensor<B, D>,
    v: Tensor<B, D>,
    dim: usize,
) -> Tensor<B, D> {
    let dot = (y.clone() * v.clone()).sum_dim(dim);
    y * (v - dot)
}

/// Softmax's full Jacobian for a batch of softmax outputs `y` of shape `[B, N]`:
/// `J[b] = diag(y[b]) − y[b] y[b]ᵀ`, shape `[B, N, N]`. Meant for teaching and tests; use
/// [`softmax_jvp`] in a backward pass.
pub fn softmax_jacobian<B: Backend>(y: Tensor<B, 2>) -> Tensor<B, 3> {
    let [b, n] = y.dims();
    let col = y.clone().reshape([b, n, 1]);
    let row = y.clone().reshape([b, 1, n]);
    let eye = Tensor::<B, 2>::eye(n, &y.device()).reshape([1, n, n]);
    eye * col.clone() - col.matmul(row)
}

/// The elementwise activations a recurrent cell can use for its output.
#[derive(Config, Debug, Copy, PartialEq)]
pub enum Activation {
    /// Hyperbolic tangent.
    Tanh,
    /// Rectified linear unit.
    Relu,
    /// Logistic sigmoid.
    Sigmoid,
    /// Leaky ReLU with slope `alpha` for negative inputs.
    LeakyRelu {
        /// The negative slope, in `[0, 1)`.
        alpha: f64,
    },
}

impl Activation {
    /// Applies the activation.
    pub fn forward<B: Backend, const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        match *self {
            Activation::Tanh => tanh(x),
            Activation::Relu => relu(x),
            Activation::Sigmoid => sigmoid(x),
            Activation::LeakyRelu { alpha } => lrelu(x, alpha),
        }
    }

    /// The derivative at the pre-activation `x` (subgradient convention at kinks).
    pub fn derivative<B: Backend, const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        match *self {
            Activation::Tanh => d_tanh_from_output(tanh(x)),
            Activation::Relu => d_relu_subgradient(x),
            Activation::Sigmoid => d_sigmoid(x),
            Activation::LeakyRelu { alpha } => d_lrelu_subgradient(x, alpha),
        }
    }

    /// The derivative written with the activation's output `y` (what a backward pass that cached
    /// `y` uses). For ReLU and leaky ReLU the sign of `y` is the sign of `x`.
    pub fn derivative_from_output<B: Backend, const D: usize>(
        &self,
        y: Tensor<B, D>,
    ) -> Tensor<B, D> {
        match *self {
            Activation::Tanh => d_tanh_from_output(y),
            Activation::Relu => d_relu_subgradient(y),
            Activation::Sigmoid => d_sigmoid_from_output(y),
            Activation::LeakyRelu { alpha } => d_lrelu_subgradient(y, alpha),
        }
    }

    /// Checks the parameters (a leaky-ReLU slope in `[0, 1)`).
    pub fn validate(&self) -> crate::Result<()> {
        if let Activation::LeakyRelu { alpha } = *self
            && !(0.0..1.0).contains(&alpha)
        {
            return Err(crate::Error::config(
                "activation.alpha",
                "a slope in [0, 1)",
                alpha,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use rensa_testkit::{TestAutodiff, TestBackend, Tolerance, assert_close, to_f64_vec};

    type B = TestBackend;

    fn t(values: &[f32]) -> Tensor<B, 1> {
        Tensor::from_floats(values, &Default::default())
    }

    #[test]
    fn sigmoid_and_its_autodiff_gradient_stay_finite_far_from_zero() {
        let xs = [-1000.0f32, -100.0, -89.0, -20.0, 20.0, 89.0, 100.0, 1000.0];
        let x = Tensor::<TestAutodiff, 1>::from_floats(xs.as_slice(), &Default::default())
            .require_grad();
        let y = sigmoid(x.clone());
        let grad = to_f64_vec(x.grad(&y.clone().sum().backward()).unwrap());
        let y = to_f64_vec(y);
        for (i, &x) in xs.iter().enumerate() {
            let exact = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!(
                (y[i] - exact).abs() <= 1e-7 * exact.max(1e-30),
                "sigmoid({x}) = {} (exact {exact})",
                y[i]
            );
            let d = exact * (1.0 - exact);
            assert!(
                grad[i].is_finite() && (grad[i] - d).abs() <= 1e-6 * d + 1e-38,
                "d sigmoid / dx at {x}: autodiff {} (exact {d})",
                grad[i]
            );
        }
    }

    #[test]
    fn sigmoid_is_accurate_to_f32_precision() {
        let xs: Vec<f32> = (-60..=60).map(|i| i as f32 * 0.25).collect();
        let exact: Vec<f64> = xs
            .iter()
            .map(|&x| 1.0 / (1.0 + (-(x as f64)).exp()))
            .collect();
        let got = to_f64_vec(sigmoid(t(&xs)));
        rensa_testkit::assert_slices_close(&got, &exact, Tolerance::new(1e-7, 3e-7), "sigmoid");
        let d_exact: Vec<f64> = exact.iter().map(|s| s * (1.0 - s)).collect();
        rensa_testkit::assert_slices_close(
            &to_f64_vec(d_sigmoid(t(&xs))),
            &d_exact,
            Tolerance::new(1e-7, 1e-6),
            "d_sigmoid",
        );
    }

    #[test]
    fn kinks_follow_the_course() {
        let x = t(&[-1.0, 0.0, 1.0]);
        let d = to_f64_vec(d_relu(x.clone()));
        assert_eq!((d[0], d[2]), (0.0, 1.0));
        assert!(d[1].is_nan(), "the course's d_relu is undefined (NaN) at 0");
        assert_eq!(
            to_f64_vec(d_relu_subgradient(x.clone())),
            vec![0.0, 0.0, 1.0]
        );
        let d = to_f64_vec(d_lrelu(x.clone(), 0.01));
        assert!((d[0] - 0.01).abs() < 1e-9 && d[1].is_nan() && d[2] == 1.0);
        let d = to_f64_vec(d_lrelu_subgradient(x, 0.01));
        assert!((d[0] - 0.01).abs() < 1e-9 && (d[1] - 0.01).abs() < 1e-9 && d[2] == 1.0);
    }

    #[test]
    fn sigmoid_derivative_is_a_quarter_at_zero_and_the_course_slip_is_not() {
        let x = t(&[0.0, 1.5]);
        assert_eq!(to_f64_vec(d_sigmoid(x.clone()))[0], 0.25);
        // Feeding the activated output into d_sigmoid (the course's binary-addition slip)
        // gives sigmoid(0.5) * (1 - sigmoid(0.5)) = 0.2350 at x = 0, not 0.25.
        let slip = to_f64_vec(d_sigmoid(sigmoid(x.clone())));
        assert!((slip[0] - 0.235_003_7).abs() < 1e-6, "{slip:?}");
        let right = to_f64_vec(d_sigmoid_from_output(sigmoid(x)));
        assert!((right[1] - 0.149_146_5).abs() < 1e-6, "{right:?}");
    }

    #[test]
    fn the_five_tanh_formulas_agree_on_moderate_inputs() {
        let xs: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.25).collect();
        let reference = tanh_formula(t(&xs), TanhFormula::Library);
        for f in TanhFormula::ALL {
            // 2·sigmoid(2x) − 1 cancels near 0: its absolute error is ~1 ulp of 1.
            assert_close(
                tanh_formula(t(&xs), f),
                reference.clone(),
                Tolerance::new(2e-7, 1e-6),
                &format!("{f:?}"),
            );
        }
        assert_close(
            tanh_stable_exp(t(&xs)),
            reference,
            Tolerance::new(2e-7, 1e-6),
            "stable exp form",
        );
    }

    #[test]
    fn which_tanh_formulas_overflow_for_large_inputs() {
        // f32: e^x overflows above ln(f32::MAX) = 88.72, e^(2x) above 44.36.
        let xs = [-1000.0f32, -100.0, -50.0, 50.0, 100.0, 1000.0];
        let finite = |f| {
            to_f64_vec(tanh_formula(t(&xs), f))
                .iter()
                .all(|v| v.is_finite())
        };
        assert!(finite(TanhFormula::Library));
        assert!(finite(TanhFormula::Sigmoid2x));
        assert!(!finite(TanhFormula::SinhCosh), "sinh/cosh gives inf/inf");
        assert!(!finite(TanhFormula::Exp), "the exp form gives inf/inf");
        assert!(
            !finite(TanhFormula::Exp2x),
            "the exp(2x) form gives inf/inf"
        );
        // The exp(2x) form fails only on the positive side, and already at 50.
        let e2 = to_f64_vec(tanh_formula(t(&xs), TanhFormula::Exp2x));
        assert_eq!(&e2[..3], &[-1.0, -1.0, -1.0]);
        assert!(e2[3].is_nan(), "{e2:?}");
        // rensa's exponential form stays exact at both ends.
        assert_eq!(
            to_f64_vec(tanh_stable_exp(t(&xs))),
            vec![-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]
        );
        // Both derivative forms stay finite (and reach the right limit, 0).
        for d in [d_tanh(t(&xs)), d_tanh_exp(t(&xs))] {
            assert!(to_f64_vec(d).iter().all(|v| *v == 0.0));
        }
    }

    #[test]
    fn softmax_jvp_matches_the_jacobian_and_autodiff() {
        let dev = Default::default();
        let xv = rensa_testkit::seeded_normal(3, 12, 1.0);
        let vv = rensa_testkit::seeded_normal(4, 12, 1.0);
        let x = Tensor::<TestAutodiff, 2>::from_data(TensorData::new(xv.clone(), [3, 4]), &dev)
            .require_grad();
        let v = Tensor::<TestAutodiff, 2>::from_data(TensorData::new(vv.clone(), [3, 4]), &dev);
        let y = softmax(x.clone(), 1);
        let grads = (y.clone() * v.clone()).sum().backward();
        let autodiff = x.grad(&grads).unwrap();
        let (y, v) = (y.inner(), v.inner());
        let jvp = softmax_jvp(y.clone(), v.clone(), 1);
        assert_close(
            jvp.clone(),
            autodiff,
            Tolerance::F32,
            "softmax_jvp vs autodiff",
        );
        let via_jacobian = softmax_jacobian(y)
            .matmul(v.reshape([3, 4, 1]))
            .reshape([3, 4]);
        assert_close(jvp, via_jacobian, Tolerance::F32, "softmax_jvp vs J v");
    }

    #[test]
    fn leaky_relu_slope_is_validated() {
        assert!(Activation::LeakyRelu { alpha: 0.01 }.validate().is_ok());
        let err = Activation::LeakyRelu { alpha: 1.5 }
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("activation.alpha") && err.contains("1.5"),
            "{err}"
        );
    }
}
