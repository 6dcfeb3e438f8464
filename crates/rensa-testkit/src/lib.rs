//! Test support shared by rensa's crates (a dev-dependency only).
//!
//! - Backend aliases: [`TestBackend`] (ndarray, f32), [`TestAutodiff`], the f64 backends
//!   [`F64Backend`] / [`F64Autodiff`] used by gradient checks, and [`WgpuBackend`] /
//!   [`WgpuAutodiff`] (wgpu, which runs on a GPU or on Mesa's software Vulkan driver).
//! - [`assert_close`] / [`assert_data_close`]: element-wise comparison with absolute and relative
//!   tolerances that report the worst element, its index and both values.
//! - [`GradCheck`]: central finite differences for any scalar function of tensors, compared with
//!   burn autodiff.
//! - [`parameters`]: a model's weights as one vector, to compare two models.
//! - [`seeded_normal`]: reproducible random test data that does not depend on the backend's RNG.
//! - [`wgpu_device_or_skip`]: the wgpu device, or a skip on a machine without Vulkan; its first
//!   call sets CubeCL's autotuner up for tests ([`configure_autotune`]).
//! - [`vulkan_present`]: whether wgpu can find a Vulkan driver here; the only item without
//!   the default `backends` feature (burn), for `cargo xtask test`.

mod vulkan;
pub use vulkan::{VULKAN_HINT, vulkan_present};

#[cfg(feature = "backends")]
mod backends;
#[cfg(feature = "backends")]
pub use backends::*;
