//! Backends, comparisons, gradient checks and test data (the `backends` feature).

use crate::{VULKAN_HINT, vulkan_present};
use burn::backend::{Autodiff, NdArray, Wgpu};
use burn::tensor::{Tensor, TensorData, backend::Backend};

/// ndarray backend in f32: the default test backend.
pub type TestBackend = NdArray<f32>;
/// [`TestBackend`] with autodiff.
pub type TestAutodiff = Autodiff<TestBackend>;
/// ndarray backend in f64, for finite-difference gradient checks.
pub type F64Backend = NdArray<f64>;
/// [`F64Backend`] with autodiff.
pub type F64Autodiff = Autodiff<F64Backend>;
/// The default wgpu backend (CubeCL with operation fusion), f32.
pub type WgpuBackend = Wgpu;
/// [`WgpuBackend`] with autodiff.
pub type WgpuAutodiff = Autodiff<WgpuBackend>;

/// The device for [`F64Backend`] tests, with f64 made its default float type.
///
/// burn 0.21 keeps the default float dtype per *device*, and `NdArray<f32>` and `NdArray<f64>`
/// share one device (`NdArrayDevice::Cpu`): whichever creates a tensor first fixes the dtype for
/// the whole process, and an f64 test running after an f32 one would silently compute in f32.
/// So f64 tests live in test binaries of their own, and call this first.
///
/// # Panics
/// If this process already uses the ndarray device with another float dtype.
pub fn f64_device() -> burn::backend::ndarray::NdArrayDevice {
    use burn::tensor::{DType, FloatDType};
    let device = burn::backend::ndarray::NdArrayDevice::Cpu;
    let _ = burn::tensor::set_default_dtypes::<F64Backend>(&device, DType::F64, DType::I64);
    let settings = burn::tensor::get_device_settings::<F64Backend>(&device);
    assert_eq!(
        settings.float_dtype,
        FloatDType::F64,
        "the ndarray device already computes in {:?} in this process: run f64 tests in a test binary without f32 ndarray tests",
        settings.float_dtype
    );
    device
}

static BACKEND_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds burn's process-wide ndarray generator for a test. burn 0.21 keeps one generator for
/// the ndarray device, shared by every thread: a test that seeds it (`B::seed`) and then relies
/// on its draws (random tensors, random initialisers, a model's init) holds this guard for as
/// long as it does, and so does every other test of the same binary that draws from it, so that
/// none reseeds it or takes draws in between. A panicking test releases it (the poison is
/// ignored).
pub fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

/// The wgpu device tests run on (the first adapter wgpu finds; lavapipe when no GPU is present).
/// Tests call [`wgpu_device_or_skip`] instead, which copes with a machine without Vulkan.
///
/// The first call also sets CubeCL's autotuner up for tests ([`configure_autotune`]).
pub fn wgpu_device() -> burn::backend::wgpu::WgpuDevice {
    configure_autotune();
    burn::backend::wgpu::WgpuDevice::default()
}

/// Sets CubeCL's autotuner up for the test suite, once per process and only if nothing has read
/// CubeCL's settings yet. A `cubecl.toml` and the `CUBECL_*` variables are read first; over them,
/// unless `CUBECL_AUTOTUNE_LEVEL` is set or the cache location is not the default one:
///
/// - the results are kept in one place for every test binary, `autotune/` in the build's profile
///   folder (`target/debug/autotune/`), instead of a `target/` beside each package's manifest
///   (the test's working folder): a shape that one crate's tests tuned is not tuned again by the
///   next crate's;
/// - the `minimal` level: input sizes are grouped more coarsely, so fewer distinct shapes are
///   tuned at all.
///
/// Tuning runs every candidate kernel of an operation once to time it, and on the software
/// adapter CI uses each candidate's first run is a shader compilation of up to seconds: on a
/// 2-core AMD EPYC, rensa-nn's suite took 472 s with an empty autotune cache and 324 s with the
/// cache its previous run left. Tests check results, not speed, so the kernel the tuner picks only
/// has to be one of burn's valid ones.
pub fn configure_autotune() {
    use burn_cubecl::cubecl::config::{
        CubeClRuntimeConfig, RuntimeConfig, autotune::AutotuneLevel, cache::CacheConfig,
    };
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut state = CubeClRuntimeConfig::storage().lock();
        if state.is_some() {
            return;
        }
        let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
        if std::env::var_os("CUBECL_AUTOTUNE_LEVEL").is_none() {
            config.autotune.level = AutotuneLevel::Minimal;
        }
        if matches!(config.autotune.cache, CacheConfig::Target)
            && let Some(profile) = profile_folder()
        {
            config.autotune.cache = CacheConfig::File(profile);
        }
        *state = Some(std::sync::Arc::new(config));
    });
}

/// The build profile's folder (`target/debug`) of the running test binary (`target/debug/deps/…`).
fn profile_folder() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "deps"))?;
    deps.parent().map(std::path::Path::to_path_buf)
}

/// The wgpu device for a test's wgpu part, or `None` on a machine without Vulkan: the test then
/// prints one line saying what it skipped and how to enable it, and passes its other parts.
/// With `RENSA_REQUIRE_WGPU=1` in the environment (`cargo xtask test` and CI set it) a missing
/// driver fails the test instead.
pub fn wgpu_device_or_skip() -> Option<burn::backend::wgpu::WgpuDevice> {
    if vulkan_present() {
        return Some(wgpu_device());
    }
    if std::env::var_os("RENSA_REQUIRE_WGPU").is_some_and(|v| v != "0") {
        panic!("no Vulkan driver for the wgpu tests (RENSA_REQUIRE_WGPU is set): {VULKAN_HINT}");
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    eprintln!("skipped the wgpu part of {test}: no Vulkan driver; {VULKAN_HINT}");
    None
}

/// Reads any tensor back to the host as `f64` values.
pub fn to_f64_vec<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Vec<f64> {
    tensor
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("tensor data converts to f64")
}

/// Every float parameter of `module`, in the order burn visits them, as `f64` values: for
/// comparing two models' weights (records cannot be compared byte for byte: they hold the
/// parameters' ids, which differ between two models built alike).
pub fn parameters<B: Backend, M: burn::module::Module<B>>(module: &M) -> Vec<f64> {
    struct Collect(Vec<f64>);
    impl<B: Backend> burn::module::ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            self.0.extend(to_f64_vec(param.val()));
        }
    }
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    collect.0
}

/// Tolerances for [`assert_close`]: an element passes when `|a - e| <= atol + rtol * |e|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
}

impl Tolerance {
    /// A tolerance for f32 computations that went through a few matmuls.
    pub const F32: Tolerance = Tolerance {
        atol: 1e-5,
        rtol: 1e-4,
    };
    /// A looser f32 tolerance for long recurrences and GPU reductions.
    pub const F32_LOOSE: Tolerance = Tolerance {
        atol: 1e-4,
        rtol: 1e-3,
    };
    /// A tolerance for f64 computations.
    pub const F64: Tolerance = Tolerance {
        atol: 1e-10,
        rtol: 1e-8,
    };

    /// Builds a tolerance from its absolute and relative parts.
    pub const fn new(atol: f64, rtol: f64) -> Self {
        Self { atol, rtol }
    }
}

/// Asserts that two tensors have the same shape and close values.
///
/// # Panics
/// With a message naming `what`, the shapes, the number of failing elements and the worst one
/// (flat index, actual, expected) when they differ. NaN never equals anything except NaN in the
/// same place.
#[track_caller]
pub fn assert_close<B1: Backend, B2: Backend, const D: usize>(
    actual: Tensor<B1, D>,
    expected: Tensor<B2, D>,
    tol: Tolerance,
    what: &str,
) {
    assert_data_close(&actual.into_data(), &expected.into_data(), tol, what);
}

/// [`assert_close`] on [`TensorData`] (any element type, any rank).
#[track_caller]
pub fn assert_data_close(actual: &TensorData, expected: &TensorData, tol: Tolerance, what: &str) {
    assert_eq!(
        actual.shape, expected.shape,
        "{what}: shape mismatch (actual {:?}, expected {:?})",
        actual.shape, expected.shape
    );
    let a = actual.clone().convert::<f64>().to_vec::<f64>().unwrap();
    let e = expected.clone().convert::<f64>().to_vec::<f64>().unwrap();
    assert_slices_close(&a, &e, tol, what);
}

/// [`assert_close`] on host slices.
#[track_caller]
pub fn assert_slices_close(actual: &[f64], expected: &[f64], tol: Tolerance, what: &str) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: length mismatch (actual {}, expected {})",
        actual.len(),
        expected.len()
    );
    let mut failures = 0usize;
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let ok = if a.is_nan() || e.is_nan() {
            a.is_nan() && e.is_nan()
        } else if a.is_infinite() || e.is_infinite() {
            a == e
        } else {
            (a - e).abs() <= tol.atol + tol.rtol * e.abs()
        };
        if !ok {
            failures += 1;
            let excess = if (a - e).is_finite() {
                (a - e).abs() - tol.rtol * e.abs()
            } else {
                f64::INFINITY
            };
            if worst.is_none_or(|(_, w)| excess > w) {
                worst = Some((i, excess));
            }
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "{what}: {failures} of {} elements differ beyond atol={} rtol={}; worst at flat index {i}: actual {} expected {} (|diff| {:.3e})",
            actual.len(),
            tol.atol,
            tol.rtol,
            actual[i],
            expected[i],
            (actual[i] - expected[i]).abs()
        );
    }
}

/// Reproducible standard-normal test data (Box-Muller over a SplitMix64 stream), independent of
/// any backend's random generator so the same seed gives the same numbers on every backend.
pub fn seeded_normal(seed: u64, len: usize, std: f64) -> Vec<f64> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next_uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // 53 random bits in (0, 1].
        ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    };
    (0..len)
        .map(|_| {
            let (u1, u2) = (next_uniform(), next_uniform());
            std * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        })
        .collect()
}

/// A seeded normal tensor of the given shape on any backend.
pub fn normal_tensor<B: Backend, const D: usize>(
    seed: u64,
    shape: [usize; D],
    std: f64,
    device: &B::Device,
) -> Tensor<B, D> {
    let len = shape.iter().product();
    Tensor::from_data(
        TensorData::new(seeded_normal(seed, len, std), shape),
        device,
    )
}

/// Central finite-difference gradient check for a scalar function of several tensors.
///
/// The function receives each input as a flat 1-D tensor on [`F64Autodiff`] (reshape it inside)
/// and returns a one-element tensor. Every input element (or, for large inputs, a seeded sample of
/// `max_elements_per_input` of them) is perturbed by `±eps` and the slope compared with the
/// gradient burn autodiff computes.
///
/// ```
/// use rensa_testkit::GradCheck;
/// // d/dx sum(x^3) = 3x^2
/// GradCheck::default().check(&[vec![0.5, -1.0, 2.0]], |xs| xs[0].clone().powi_scalar(3).sum());
/// ```
#[derive(Clone, Debug)]
pub struct GradCheck {
    /// Step of the central difference.
    pub eps: f64,
    /// Tolerance between the numerical and the autodiff gradient.
    pub tol: Tolerance,
    /// At most this many elements per input are perturbed (chosen evenly spread).
    pub max_elements_per_input: usize,
}

impl Default for GradCheck {
    fn default() -> Self {
        Self {
            eps: 1e-6,
            tol: Tolerance::new(1e-7, 1e-5),
            max_elements_per_input: 64,
        }
    }
}

impl GradCheck {
    /// Runs the check; panics naming the input and element that disagree.
    #[track_caller]
    pub fn check<F>(&self, inputs: &[Vec<f64>], f: F)
    where
        F: Fn(&[Tensor<F64Autodiff, 1>]) -> Tensor<F64Autodiff, 1>,
    {
        let device = f64_device();
        let make = |values: &[Vec<f64>], grad: bool| -> Vec<Tensor<F64Autodiff, 1>> {
            values
                .iter()
                .map(|v| {
                    let t = Tensor::<F64Autodiff, 1>::from_data(
                        TensorData::new(v.clone(), [v.len()]),
                        &device,
                    );
                    if grad { t.require_grad() } else { t }
                })
                .collect()
        };
        let eval = |values: &[Vec<f64>]| -> f64 {
            let out = f(&make(values, false));
            assert_eq!(
                out.dims(),
                [1],
                "GradCheck: the function must return one element"
            );
            out.into_scalar()
        };

        let tracked = make(inputs, true);
        let loss = f(&tracked);
        assert_eq!(
            loss.dims(),
            [1],
            "GradCheck: the function must return one element"
        );
        let grads = loss.backward();

        for (k, input) in inputs.iter().enumerate() {
            let analytic = match tracked[k].grad(&grads) {
                Some(g) => to_f64_vec(g),
                None => vec![0.0; input.len()],
            };
            let n = input.len();
            let picks: Vec<usize> = if n <= self.max_elements_per_input {
                (0..n).collect()
            } else {
                (0..self.max_elements_per_input)
                    .map(|j| j * n / self.max_elements_per_input)
                    .collect()
            };
            let mut numeric = Vec::with_capacity(picks.len());
            let mut expected = Vec::with_capacity(picks.len());
            for &i in &picks {
                let mut plus = inputs.to_vec();
                plus[k][i] += self.eps;
                let mut minus = inputs.to_vec();
                minus[k][i] -= self.eps;
                numeric.push((eval(&plus) - eval(&minus)) / (2.0 * self.eps));
                expected.push(analytic[i]);
            }
            assert_slices_close(
                &expected,
                &numeric,
                self.tol,
                &format!("gradient of input {k} (autodiff vs finite differences)"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "worst at flat index 1")]
    fn assert_close_reports_the_worst_element() {
        assert_slices_close(&[1.0, 2.5, 3.0], &[1.0, 2.0, 3.0], Tolerance::F32, "x");
    }

    #[test]
    fn nan_matches_only_nan() {
        assert_slices_close(&[f64::NAN], &[f64::NAN], Tolerance::F32, "nan");
        let r = std::panic::catch_unwind(|| {
            assert_slices_close(&[f64::NAN], &[0.0], Tolerance::F32, "nan")
        });
        assert!(r.is_err());
    }

    #[test]
    fn seeded_normal_is_reproducible_and_standard() {
        let a = seeded_normal(7, 20_000, 1.0);
        assert_eq!(a, seeded_normal(7, 20_000, 1.0));
        assert_ne!(a, seeded_normal(8, 20_000, 1.0));
        let mean = a.iter().sum::<f64>() / a.len() as f64;
        let var = a.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / a.len() as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }

    #[test]
    #[should_panic(expected = "autodiff vs finite differences")]
    fn gradcheck_catches_a_wrong_gradient() {
        // A function whose autodiff gradient is deliberately cut: detach hides d/dx of x*x.
        GradCheck::default().check(&[vec![0.3, 0.7]], |xs| {
            (xs[0].clone() * xs[0].clone().detach()).sum()
        });
    }

    #[test]
    fn gradcheck_accepts_a_correct_gradient() {
        GradCheck::default().check(&[vec![0.3, -0.7], vec![1.5, 2.0]], |xs| {
            (xs[0].clone().exp() * xs[1].clone()).sum()
        });
    }
}
