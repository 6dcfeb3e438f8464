//! What every rensa program's `main` needs, written once: the backend chosen by cargo feature
//! ([`Inner`], [`Train`]), a description of it that names the wgpu adapter
//! ([`describe_backend`]), a caching allocator, and the rayon pool the CPU backend's work runs
//! in ([`launch`]). The examples' `main.rs` files use it and keep only their command line,
//! printing and pictures.
//!
//! ```no_run
//! use clap::Parser;
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     common: rensa_launch::Common,
//! }
//!
//! fn main() -> anyhow::Result<()> {
//!     let args = Args::parse();
//!     rensa_launch::launch(&args.common, true, |device| {
//!         // build a model on `rensa_launch::Train` and train it on `device`
//!         let _ = device;
//!         Ok(())
//!     })
//! }
//! ```
//!
//! Features: `ndarray` (default, the CPU) and `wgpu` (the GPU; wins when both are on).

use anyhow::Context;
use rensa_nn::recurrent::Differentiation;

pub mod images;
#[cfg(feature = "distributed")]
pub mod peers;
pub mod trained;

/// A caching allocator for the programs: the tensors of a training step are large, and glibc's
/// malloc maps and unmaps each one, so every step page-faults its memory back in (seen in a
/// profile of the LSTM at (64, 64, 128, 256); not a recorded benchmark). PyTorch and TensorFlow
/// keep their own caching allocators likewise. [`launch`] also tells mimalloc to keep the memory
/// it frees ([`allocator::keep_freed_memory`]).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's settings, through its C interface (the `mimalloc` crate has no call for them).
#[allow(unsafe_code)]
pub mod allocator {
    use std::ffi::{c_int, c_long};

    /// `mi_option_purge_delay` in the `mi_option_e` enumeration of mimalloc 3's `mimalloc.h`
    /// (the version the `mimalloc` crate builds; `libmimalloc-sys` does not name this option):
    /// milliseconds before freed memory is given back to the system, `-1` for never. A test
    /// checks the number against the option's default (1000 in mimalloc 3's `options.c`).
    const PURGE_DELAY: c_int = 15;

    unsafe extern "C" {
        fn mi_option_get(option: c_int) -> c_long;
        fn mi_option_set(option: c_int, value: c_long);
    }

    /// Keeps the memory the program frees for its next allocations instead of returning it to
    /// the system (mimalloc's `purge_delay = -1`, also set by `MIMALLOC_PURGE_DELAY=-1`).
    ///
    /// A training step frees and allocates the same large buffers again and again; when mimalloc
    /// returns them, the kernel unmaps them and zeroes fresh pages on the next touch. In a
    /// profile of the MLP VAE's training on ndarray that zeroing was 11% of the time. The cost
    /// is that the process keeps its peak memory until it exits, as PyTorch's caching allocator
    /// does.
    pub fn keep_freed_memory() {
        // SAFETY: `mi_option_set` takes any option number and value (an unknown one is ignored
        // with a warning); it only stores the value in mimalloc's option table.
        unsafe { mi_option_set(PURGE_DELAY, -1) }
    }

    /// mimalloc's current purge delay in milliseconds (`-1`: freed memory is kept).
    pub fn purge_delay() -> i64 {
        // SAFETY: reads one entry of mimalloc's option table (initialised on first use).
        unsafe { mi_option_get(PURGE_DELAY) as i64 }
    }
}

/// The backend the program computes on: wgpu with the `wgpu` feature, else ndarray.
#[cfg(feature = "wgpu")]
pub type Inner = burn::backend::Wgpu;
/// The backend the program computes on: wgpu with the `wgpu` feature, else ndarray.
#[cfg(not(feature = "wgpu"))]
pub type Inner = burn::backend::NdArray;

/// [`Inner`] under autodiff: what models train on.
pub type Train = burn::backend::Autodiff<Inner>;

/// The device of [`Inner`].
pub type Device = burn::tensor::Device<Inner>;

/// The recurrent cell an example builds (`--cell rnn|lstm|gru`); each example maps it to
/// `RnnConfig`, `LstmConfig` or `GruConfig`. Its `Debug` form (`Rnn`, `Lstm`, `Gru`) is what
/// checkpoint settings record.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// The simple (Elman) RNN.
    Rnn,
    /// The LSTM.
    Lstm,
    /// The GRU.
    Gru,
}

/// Command-line options every example has (flatten them into its `clap` arguments).
#[derive(clap::Args, Clone, Debug)]
pub struct Common {
    /// Threads of the CPU backend's pool (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Keep subnormal floats (below about 1e-38) on the CPU backend's threads. By default they are
    /// flushed to zero, as TensorFlow's threads do: on x86 each operation on one takes a
    /// microcode assist, many times slower.
    #[arg(long)]
    pub keep_subnormals: bool,
    /// Differentiate the recurrences step by step with burn's autodiff instead of rensa's
    /// hand-written backward pass for the whole sequence (same gradients, slower; for teaching
    /// and checking).
    #[arg(long)]
    pub plain_autodiff: bool,
}

impl Common {
    /// How the CPU backend's threads treat subnormal floats, from `--keep-subnormals`.
    pub fn subnormals(&self) -> rensa_train::Subnormals {
        if self.keep_subnormals {
            rensa_train::Subnormals::Keep
        } else {
            rensa_train::Subnormals::Flush
        }
    }

    /// How the recurrent layers are differentiated, from `--plain-autodiff`.
    pub fn differentiation(&self) -> Differentiation {
        if self.plain_autodiff {
            Differentiation::Plain
        } else {
            Differentiation::Fused
        }
    }
}

/// Runs `work` on the default device of [`Inner`], after printing which backend it is (when
/// `show_backend`; scripts that read the output rely on that line), on a worker thread of a rayon
/// pool of `--threads` threads, which flush subnormal floats to zero unless `--keep-subnormals`
/// ([`rensa_train::Subnormals`]).
///
/// burn's ndarray backend hands most tensor operations to rayon. Called from an ordinary
/// thread, each operation wakes a pool thread and waits for it, which for small tensors costs
/// more than the operation itself, so small models such as the sin → cos seq2seq (10 hidden
/// units, batches of 16) and the binary-addition RNN train faster inside the pool
/// than on the calling thread. Other backends are unaffected.
///
/// # Errors
/// `work`'s error, or a bad `--threads`.
pub fn launch<R: Send>(
    common: &Common,
    show_backend: bool,
    work: impl FnOnce(&Device) -> anyhow::Result<R> + Send,
) -> anyhow::Result<R> {
    allocator::keep_freed_memory();
    let device = open_device()?;
    if show_backend {
        println!("backend: {}", describe_backend(&device));
    }
    rensa_train::in_thread_pool_with(common.threads, common.subnormals(), || work(&device))
        .context("--threads")?
}

/// Adam with burn's defaults (rensa's fused step: burn's arithmetic, one pass per tensor on ndarray),
/// the gradient clipped to L2 norm `clip_norm` before each step (0: not
/// clipped): the `--clip-norm` option of the sequence examples.
pub fn adam(clip_norm: f32) -> rensa_nn::optim::FusedAdamConfig {
    rensa_nn::optim::FusedAdamConfig::new().with_grad_clipping(
        (clip_norm > 0.0).then_some(burn::grad_clipping::GradientClippingConfig::Norm(clip_norm)),
    )
}

/// A `clap` value parser for counts that must be at least 1 (`--hidden`, `--batch-size`, ...):
/// `#[arg(long, value_parser = rensa_launch::at_least_one)]` refuses 0 while the command line is
/// read, before any work.
///
/// # Errors
/// Not a whole number, or 0.
pub fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1, got 0".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a whole number ({e})")),
    }
}

/// Runs a program (an example's binary, in its command-line tests) with `args` and no backtraces;
/// returns whether it succeeded, its standard output and its standard error.
///
/// # Panics
/// When the program cannot be started.
pub fn run_program(program: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(program)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The default device of [`Inner`], set up and checked: with the `wgpu` feature on a machine
/// where wgpu finds no adapter at all (no GPU driver, no Vulkan loader), burn's set-up panics;
/// this returns that as an error saying what to install or how to build for the CPU instead.
///
/// # Errors
/// No usable wgpu adapter.
pub fn open_device() -> anyhow::Result<Device> {
    let device = Device::default();
    #[cfg(feature = "wgpu")]
    {
        // burn registers the device's runtime on first use and panics when wgpu has no adapter;
        // do that here, once, with the panic message kept out of the way.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let probed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            describe_wgpu_adapter(&device)
        }));
        std::panic::set_hook(hook);
        if let Err(panic) = probed {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "no reason given".to_string());
            anyhow::bail!(
                "this program was built with --features wgpu, but wgpu found no graphics adapter \
                 ({why}). Install a GPU driver, or Mesa's software Vulkan (on Debian/Ubuntu: \
                 apt-get install mesa-vulkan-drivers libvulkan1), or build without --features wgpu \
                 to run on the CPU"
            );
        }
    }
    Ok(device)
}

/// Finds a file the program ships with (`assets/<name>` in the repository) at run time: next to
/// the executable (`<exe dir>/<name>` or `<exe dir>/assets/<name>`), then in the rensa workspace
/// that holds the current directory or the executable (the nearest ancestor with
/// `assets/<name>`, which is how `cargo run` and a binary under `target/` find it). A binary
/// copied elsewhere without its assets gets an error naming the places searched and `flag`, the
/// option or argument that gives the path instead.
///
/// # Errors
/// The file is in none of those places.
pub fn find_asset(name: &str, flag: &str) -> anyhow::Result<std::path::PathBuf> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.canonicalize().ok())
        .and_then(|e| e.parent().map(std::path::Path::to_path_buf));
    let mut tried = Vec::new();
    if let Some(dir) = &exe_dir {
        for candidate in [dir.join(name), dir.join("assets").join(name)] {
            if candidate.is_file() {
                return Ok(candidate);
            }
            tried.push(candidate);
        }
    }
    let starts = [std::env::current_dir().ok(), exe_dir];
    for start in starts.iter().flatten() {
        for dir in start.ancestors() {
            let candidate = dir.join("assets").join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        tried.push(start.join("(each parent)").join("assets").join(name));
    }
    let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    anyhow::bail!(
        "could not find the default {name}: looked in {}; give its path as {flag}",
        tried.join(", ")
    )
}

/// The backend in words; for wgpu, the adapter it picked (a software adapter is said so, so that
/// a run on one is never mistaken for a GPU run).
pub fn describe_backend(device: &Device) -> String {
    #[cfg(feature = "wgpu")]
    {
        describe_wgpu_adapter(device)
    }
    #[cfg(not(feature = "wgpu"))]
    {
        let _ = device;
        "ndarray (CPU)".to_string()
    }
}

/// The wgpu adapter burn picks for `device`, in words: its name, kind and graphics API, and a
/// warning when it is a software adapter (such as Mesa's lavapipe) rather than a GPU.
#[cfg(feature = "wgpu")]
pub fn describe_wgpu_adapter(device: &burn::backend::wgpu::WgpuDevice) -> String {
    use burn::backend::wgpu::{graphics::AutoGraphicsApi, init_setup};
    // burn sets a device's runtime up once per process and panics on a second set-up, so the
    // description is made once (by `open_device`'s probe) and reused (by `describe_backend`).
    static DESCRIBED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(known) = DESCRIBED.get() {
        return known.clone();
    }
    let info = init_setup::<AutoGraphicsApi>(device, Default::default())
        .adapter
        .get_info();
    let kind = format!("{:?}", info.device_type);
    let note = if kind == "Cpu" {
        " (a software adapter, not a GPU)"
    } else {
        ""
    };
    DESCRIBED
        .get_or_init(|| {
            format!(
                "wgpu on \"{}\" ({kind}, {:?}){note}",
                info.name, info.backend
            )
        })
        .clone()
}

#[cfg(test)]
mod tests {
    /// The option number is mimalloc's purge delay: it reads the option's default (1000 ms in
    /// mimalloc 3) until the programs' setting replaces it. No other test here calls `launch`.
    #[test]
    fn the_allocator_keeps_freed_memory_once_told_to() {
        use super::allocator::{keep_freed_memory, purge_delay};
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(
                purge_delay(),
                1000,
                "not mimalloc's purge delay, or not mimalloc 3"
            );
        }
        keep_freed_memory();
        assert_eq!(purge_delay(), -1);
    }

    #[test]
    fn assets_are_found_in_the_workspace_and_a_missing_one_names_the_flag() {
        // Tests run in the package's folder: the workspace's assets are two levels up.
        let found = super::find_asset("coffee.png", "--image").unwrap();
        assert!(found.ends_with("assets/coffee.png"), "{}", found.display());
        let err = super::find_asset("no-such-asset.png", "--image")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no-such-asset.png") && err.contains("give its path as --image"),
            "{err}"
        );
    }
}
