//! rensa-nn's f32 tests, in one binary (each test binary links burn, wgpu and CubeCL: one link
//! instead of four): the layers against burn-nn and numpy goldens, bad input, the fused autodiff
//! path against the plain one, and the CubeCL kernels against tensor ops.

mod attention;
mod bad_input;
mod conv;
mod cube_kernel;
mod fused;
mod latent;
mod ndarray_patch;
mod optim;
mod recurrent;

/// The cases of a golden file (`{"cases": [...]}`, written by a script in `assets/golden`).
fn golden_cases<C: serde::de::DeserializeOwned>(json: &str) -> Vec<C> {
    #[derive(serde::Deserialize)]
    struct Golden<C> {
        cases: Vec<C>,
    }
    serde_json::from_str::<Golden<C>>(json)
        .expect("a golden file")
        .cases
}
