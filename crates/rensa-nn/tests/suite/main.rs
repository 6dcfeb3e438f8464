//! rensa-nn's f32 tests, in one binary (each test binary links burn, wgpu and CubeCL: one link
//! instead of four): the layers against burn-nn and numpy goldens, bad input, the fused autodiff
//! path against the plain one, and the CubeCL kernels against tensor ops.

mod attention;
mod bad_input;
mod cube_kernel;
mod fused;
mod recurrent;
