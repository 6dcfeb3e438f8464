//! Weight initialisation: normal, Xavier/Glorot, He, orthogonal, constants.
//!
//! Weights follow burn's layout `[fan_in, fan_out]` (input-major, as `x.matmul(w)` needs).
//! For the fused gate weights of a recurrent cell (`[I, G·H]`), fan_out is `G·H`, as in Keras.
//!
//! Random draws come from the backend's generator, so `B::seed(&device, s)` makes them
//! reproducible; the orthogonal initialiser draws a normal matrix the same way and
//! orthonormalises it on the host in f64.

use burn::config::Config;
use burn::tensor::{Distribution, Tensor, TensorData, backend::Backend};

use crate::Error;

/// How to fill a weight matrix or bias vector.
#[derive(Config, Debug, Copy, PartialEq)]
pub enum Init {
    /// All zeros.
    Zeros,
    /// Every element equal to `value`.
    Constant {
        /// The value.
        value: f64,
    },
    /// Uniform on `[low, high)`.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound (exclusive).
        high: f64,
    },
    /// Normal with the given mean and standard deviation (the course's
    /// `weight_init_std * np.random.randn`).
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// Xavier/Glorot normal: `std = gain · √(2 / (fan_in + fan_out))`.
    XavierNormal {
        /// Multiplier (1 for tanh/sigmoid layers).
        gain: f64,
    },
    /// Xavier/Glorot uniform on `±gain · √(6 / (fan_in + fan_out))` (Keras's default kernel
    /// initialiser).
    XavierUniform {
        /// Multiplier.
        gain: f64,
    },
    /// He/Kaiming normal: `std = gain · √(2 / fan_in)`.
    HeNormal {
        /// Multiplier.
        gain: f64,
    },
    /// He/Kaiming uniform on `±gain · √(6 / fan_in)`.
    HeUniform {
        /// Multiplier.
        gain: f64,
    },
    /// A (semi-)orthogonal matrix times `gain` (Keras's default recurrent initialiser): the
    /// rows or the columns, whichever are fewer, are orthonormal.
    Orthogonal {
        /// Multiplier.
        gain: f64,
    },
}

impl Init {
    /// Xavier/Glorot uniform with gain 1.
    pub const XAVIER_UNIFORM: Init = Init::XavierUniform { gain: 1.0 };
    /// Orthogonal with gain 1.
    pub const ORTHOGONAL: Init = Init::Orthogonal { gain: 1.0 };

    /// Whether this initialiser can fill a bias vector (the fan-based and orthogonal ones need a
    /// matrix).
    pub fn supports_vectors(&self) -> bool {
        matches!(
            self,
            Init::Zeros | Init::Constant { .. } | Init::Uniform { .. } | Init::Normal { .. }
        )
    }

    /// Checks the parameters: finite values, `low < high`, `std ≥ 0`, `gain > 0`. `field` names
    /// the configuration field in the error.
    pub fn validate(&self, field: &'static str) -> crate::Result<()> {
        let bad = |expected| Err(Error::config(field, expected, format!("{self:?}")));
        match *self {
            Init::Zeros => Ok(()),
            Init::Constant { value } if !value.is_finite() => bad("a finite constant"),
            Init::Uniform { low, high } if !(low.is_finite() && high.is_finite() && low < high) => {
                bad("a uniform range with finite low < high")
            }
            Init::Normal { mean, std } if !(mean.is_finite() && std.is_finite() && std >= 0.0) => {
                bad("a normal with finite mean and std >= 0")
            }
            Init::XavierNormal { gain }
            | Init::XavierUniform { gain }
            | Init::HeNormal { gain }
            | Init::HeUniform { gain }
            | Init::Orthogonal { gain }
                if !(gain.is_finite() && gain > 0.0) =>
            {
                bad("an initialiser with a finite gain > 0")
            }
            _ => Ok(()),
        }
    }

    /// A `[fan_in, fan_out]` weight matrix.
    pub fn matrix<B: Backend>(
        &self,
        fan_in: usize,
        fan_out: usize,
        device: &B::Device,
    ) -> Tensor<B, 2> {
        let shape = [fan_in, fan_out];
        let (fi, fo) = (fan_in as f64, fan_out as f64);
        match *self {
            Init::Zeros => Tensor::zeros(shape, device),
            Init::Constant { value } => Tensor::full(shape, value, device),
            Init::Uniform { low, high } => {
                Tensor::random(shape, Distribution::Uniform(low, high), device)
            }
            Init::Normal { mean, std } => {
                Tensor::random(shape, Distribution::Normal(mean, std), device)
            }
            Init::XavierNormal { gain } => Tensor::random(
                shape,
                Distribution::Normal(0.0, gain * (2.0 / (fi + fo)).sqrt()),
                device,
            ),
            Init::XavierUniform { gain } => {
                let a = gain * (6.0 / (fi + fo)).sqrt();
                Tensor::random(shape, Distribution::Uniform(-a, a), device)
            }
            Init::HeNormal { gain } => Tensor::random(
                shape,
                Distribution::Normal(0.0, gain * (2.0 / fi).sqrt()),
                device,
            ),
            Init::HeUniform { gain } => {
                let a = gain * (6.0 / fi).sqrt();
                Tensor::random(shape, Distribution::Uniform(-a, a), device)
            }
            Init::Orthogonal { gain } => orthogonal(fan_in, fan_out, gain, device),
        }
    }

    /// A bias vector of length `n`.
    ///
    /// # Panics
    /// For the fan-based and orthogonal initialisers, which need a matrix (configuration
    /// validation rejects them for biases before this is reached).
    pub fn vector<B: Backend>(&self, n: usize, device: &B::Device) -> Tensor<B, 1> {
        assert!(
            self.supports_vectors(),
            "{self:?} initialises matrices only; use Zeros, Constant, Uniform or Normal for a bias"
        );
        self.matrix::<B>(1, n, device).reshape([n])
    }
}

/// A `[rows, cols]` matrix whose rows (if `rows ≤ cols`) or columns are orthonormal, times `gain`.
fn orthogonal<B: Backend>(rows: usize, cols: usize, gain: f64, device: &B::Device) -> Tensor<B, 2> {
    // Orthonormalise the columns of an n×m normal matrix, n ≥ m, then transpose if needed.
    let (n, m) = (rows.max(cols), rows.min(cols));
    let a: Vec<f64> = Tensor::<B, 2>::random([m, n], Distribution::Normal(0.0, 1.0), device)
        .into_data()
        .convert::<f64>()
        .to_vec()
        .expect("random data converts to f64");
    // `a` holds m vectors of length n, one per row: modified Gram-Schmidt on them (twice, for
    // orthogonality to working precision).
    let mut q = a;
    for j in 0..m {
        for _pass in 0..2 {
            for k in 0..j {
                let (done, rest) = q.split_at_mut(j * n);
                let qk = &done[k * n..(k + 1) * n];
                let qj = &mut rest[..n];
                let dot: f64 = qk.iter().zip(qj.iter()).map(|(x, y)| x * y).sum();
                qj.iter_mut().zip(qk).for_each(|(y, x)| *y -= dot * x);
            }
        }
        let qj = &mut q[j * n..(j + 1) * n];
        let norm = qj.iter().map(|x| x * x).sum::<f64>().sqrt();
        qj.iter_mut().for_each(|x| *x /= norm);
    }
    q.iter_mut().for_each(|x| *x *= gain);
    // q is [m, n] with orthonormal rows.
    let t = Tensor::<B, 2>::from_data(TensorData::new(q, [m, n]).convert::<B::FloatElem>(), device);
    if rows == m { t } else { t.transpose() }
}

/// Draws every parameter of `module` now. burn-nn's layers (`Linear`, `Conv2d`, ...) create their
/// parameters lazily, on first use: without this, the draws happen at the first forward pass, from
/// whatever state the backend's generator is in then (after a training loop has reseeded it, say),
/// and a clone taken before that draws its own, different weights. rensa's models call it at the
/// end of `init`, so that seeding the backend before `init` decides the weights.
pub fn materialise<B: Backend, M: burn::module::Module<B>>(module: M) -> M {
    struct Touch;
    impl<B: Backend> burn::module::ModuleVisitor<B> for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
    module
}

#[cfg(test)]
mod tests {
    use super::*;
    use rensa_testkit::{TestBackend as B, to_f64_vec};

    // The backend's generator is global: tests that draw from it take turns
    // (`rensa_testkit::rng_lock`), so that a seeded test's draws are not interleaved with
    // another test's.

    fn stats(t: Tensor<B, 2>) -> (f64, f64, f64, f64) {
        let v = to_f64_vec(t);
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), x| (l.min(*x), h.max(*x)));
        (mean, std, lo, hi)
    }

    #[test]
    fn fan_based_initialisers_have_the_right_spread() {
        let _rng = rensa_testkit::rng_lock();
        let dev = Default::default();
        B::seed(&dev, 1);
        let (fi, fo) = (200, 300);
        let (xavier, he) = (2.0 / (fi + fo) as f64, 2.0 / fi as f64);
        // normal: std sqrt(2 / fan)
        for (init, var, tol) in [
            (Init::XavierNormal { gain: 1.0 }, xavier, 0.003),
            (Init::HeNormal { gain: 1.0 }, he, 0.004),
        ] {
            let (_, s, ..) = stats(init.matrix::<B>(fi, fo, &dev));
            assert!((s - var.sqrt()).abs() < tol, "{init:?}: std {s}");
        }
        // uniform on ±a, a = sqrt(6 / fan), std a / sqrt(3)
        for (init, var) in [
            (Init::XavierUniform { gain: 1.0 }, xavier),
            (Init::HeUniform { gain: 1.0 }, he),
        ] {
            let a = (3.0 * var).sqrt();
            let (_, s, lo, hi) = stats(init.matrix::<B>(fi, fo, &dev));
            assert!(
                lo >= -a && hi <= a && hi > 0.9 * a && (s - a / 3f64.sqrt()).abs() < 0.004,
                "{init:?}: range {lo}..{hi}, std {s}"
            );
        }
        let (m, s, ..) = stats(
            Init::Normal {
                mean: 0.5,
                std: 2.0,
            }
            .matrix::<B>(fi, fo, &dev),
        );
        assert!(
            (m - 0.5).abs() < 0.03 && (s - 2.0).abs() < 0.03,
            "normal {m} {s}"
        );
        assert_eq!(
            stats(Init::Constant { value: 1.0 }.matrix::<B>(2, 3, &dev)),
            (1.0, 0.0, 1.0, 1.0)
        );
        assert_eq!(
            stats(Init::Zeros.matrix::<B>(2, 3, &dev)),
            (0.0, 0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn orthogonal_is_orthonormal_for_tall_wide_and_square() {
        let _rng = rensa_testkit::rng_lock();
        let dev = Default::default();
        for (r, c) in [(16, 16), (10, 40), (40, 10)] {
            let w = Init::Orthogonal { gain: 2.0 }.matrix::<B>(r, c, &dev);
            assert_eq!(w.dims(), [r, c]);
            let k = r.min(c);
            let gram = if r <= c {
                w.clone().matmul(w.transpose())
            } else {
                w.clone().transpose().matmul(w)
            };
            let expected = Tensor::<B, 2>::eye(k, &dev) * 4.0;
            rensa_testkit::assert_close(
                gram,
                expected,
                rensa_testkit::Tolerance::new(1e-5, 1e-5),
                &format!("gram {r}x{c}"),
            );
        }
    }

    #[test]
    fn same_seed_same_weights() {
        let _rng = rensa_testkit::rng_lock();
        let dev = Default::default();
        B::seed(&dev, 42);
        let a = to_f64_vec(Init::ORTHOGONAL.matrix::<B>(8, 32, &dev));
        B::seed(&dev, 42);
        let b = to_f64_vec(Init::ORTHOGONAL.matrix::<B>(8, 32, &dev));
        assert_eq!(a, b);
    }

    #[test]
    fn invalid_parameters_are_rejected_with_the_field_named() {
        let e = Init::Normal {
            mean: 0.0,
            std: -1.0,
        }
        .validate("recurrent_init")
        .unwrap_err();
        assert!(
            e.to_string().contains("recurrent_init") && e.to_string().contains("-1"),
            "{e}"
        );
        assert!(
            Init::Uniform {
                low: 1.0,
                high: 1.0
            }
            .validate("x")
            .is_err()
        );
        assert!(Init::Orthogonal { gain: 0.0 }.validate("x").is_err());
        assert!(Init::Constant { value: f64::NAN }.validate("x").is_err());
        assert!(Init::XAVIER_UNIFORM.validate("x").is_ok());
        assert!(!Init::ORTHOGONAL.supports_vectors() && Init::Zeros.supports_vectors());
    }
}
