//! rensa-augment's tests in one binary (one link of burn and wgpu instead of six): bad input and
//! the fuzz harness, the pipeline file formats, the CPU kernels against OpenCV goldens, MixUp and
//! CutMix, and the CPU and tensor paths against each other.

mod common;

mod bad_input;
mod formats;
mod fuzz;
mod golden_cv2;
mod mix;
mod paths_agree;
