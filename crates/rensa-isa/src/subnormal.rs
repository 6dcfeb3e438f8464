//! Flushing subnormal floats to zero, one thread at a time.
//!
//! A subnormal (denormal) float is one below the smallest normal magnitude (`f32`: about
//! 1.2·10⁻³⁸), kept by IEEE 754's gradual underflow at reduced precision. x86 CPUs handle an
//! operation that reads or produces one in a microcode assist, tens to hundreds of cycles
//! instead of one. Training makes them without anyone asking: Adam's moments of a weight whose
//! gradient is (nearly) always zero decay geometrically, `m ← 0.9 m`, squares of tiny gradients
//! underflow, and so on. On rensa's MLP VAE (Fashion-MNIST, ndarray, an Intel Xeon) the epoch
//! time grew from 3.3 s to 5.2 s over the first three epochs for that reason alone; with
//! flushing on it took 3.44 s per epoch from the first to the last, and every loss was the same
//! to the last digit (BENCHMARKS.md, 2026-12-06).
//!
//! The CPU can instead treat subnormal operands as zero (DAZ) and round subnormal results to zero
//! (FTZ). TensorFlow runs its thread pools that way; PyTorch offers it as
//! `torch.set_flush_denormal(True)`. The setting belongs to a thread (its MXCSR register on
//! x86-64, its FPCR on AArch64), so a thread pool sets it in every worker (rensa-train's
//! `in_thread_pool_with`).
//!
//! What changes: numbers below about 1.2·10⁻³⁸ (`f32`) or 2.2·10⁻³⁰⁸ (`f64`) become zero, in
//! results and when read. Rust and LLVM assume the default floating-point environment, so a float
//! expression the compiler evaluates while building may still give a subnormal where the same
//! expression at run time gives zero; nothing else differs. A thread that relies on gradual
//! underflow (a test of it, say) leaves flushing off, as every thread starts.

/// Whether the calling thread flushes subnormal operands and results to zero (`false` on CPUs
/// without such a mode).
#[must_use]
pub fn flushing() -> bool {
    imp::read().is_some_and(|bits| bits & imp::FLUSH == imp::FLUSH)
}

/// Turns flushing of subnormals to zero on or off for the calling thread and returns the previous
/// setting; `None` on CPUs without such a mode (x86-64 and AArch64 have one), where nothing
/// changes.
pub fn set_flushing(on: bool) -> Option<bool> {
    let bits = imp::read()?;
    let was = bits & imp::FLUSH == imp::FLUSH;
    let new = if on {
        bits | imp::FLUSH
    } else {
        bits & !imp::FLUSH
    };
    if new != bits {
        imp::write(new);
    }
    Some(was)
}

#[cfg(target_arch = "x86_64")]
mod imp {
    /// MXCSR's DAZ (bit 6: subnormal operands read as zero) and FTZ (bit 15: subnormal results
    /// written as zero).
    pub const FLUSH: u64 = (1 << 6) | (1 << 15);

    pub fn read() -> Option<u64> {
        let mut csr: u32 = 0;
        // SAFETY: `stmxcsr` stores the 32-bit MXCSR register to the pointed-to `u32`, which is
        // valid and aligned; SSE (and so MXCSR) is part of every x86-64 CPU.
        unsafe {
            core::arch::asm!(
                "stmxcsr [{}]",
                in(reg) &raw mut csr,
                options(nostack, preserves_flags)
            );
        }
        Some(u64::from(csr))
    }

    pub fn write(bits: u64) {
        let csr = bits as u32;
        // SAFETY: `ldmxcsr` loads MXCSR from the pointed-to `u32`. The value is the register's
        // own with only the DAZ and FTZ bits changed, both defined on every x86-64 CPU, so it
        // cannot fault; it changes how this thread's float operations treat subnormals, which
        // the module documentation describes.
        unsafe {
            core::arch::asm!(
                "ldmxcsr [{}]",
                in(reg) &raw const csr,
                options(nostack, readonly, preserves_flags)
            );
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod imp {
    /// FPCR's FZ (bit 24): subnormal operands and results of single and double precision
    /// flushed to zero.
    pub const FLUSH: u64 = 1 << 24;

    pub fn read() -> Option<u64> {
        let fpcr: u64;
        // SAFETY: reading FPCR is allowed at EL0 and has no side effect.
        unsafe {
            core::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack, preserves_flags));
        }
        Some(fpcr)
    }

    pub fn write(bits: u64) {
        // SAFETY: writing FPCR is allowed at EL0; the value is the register's own with only FZ
        // changed, which changes how this thread's float operations treat subnormals.
        unsafe {
            core::arch::asm!("msr fpcr, {}", in(reg) bits, options(nomem, nostack, preserves_flags));
        }
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod imp {
    pub const FLUSH: u64 = 0;

    pub fn read() -> Option<u64> {
        None
    }

    pub fn write(_: u64) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    /// Half the smallest normal `f32`, computed at run time.
    fn underflowing_product() -> f32 {
        black_box(f32::MIN_POSITIVE) * black_box(0.5f32)
    }

    #[test]
    fn flushing_is_per_thread_and_restorable() {
        // a fresh thread, so that no other test sees the change
        std::thread::spawn(|| {
            assert!(!flushing(), "threads start with gradual underflow");
            assert!(underflowing_product() > 0.0, "a subnormal result");
            let supported = set_flushing(true).is_some();
            if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
                assert!(supported);
            }
            if supported {
                assert!(flushing());
                assert_eq!(underflowing_product(), 0.0, "the subnormal result flushed");
                let subnormal = black_box(f32::from_bits(1));
                assert_eq!(
                    subnormal * black_box(1.0f32),
                    0.0,
                    "a subnormal operand read as 0"
                );
                // normal numbers are untouched
                assert_eq!(black_box(1.5f32) * black_box(2.0f32), 3.0);
                assert_eq!(set_flushing(false), Some(true));
            }
            assert!(!flushing());
            assert!(underflowing_product() > 0.0, "gradual underflow again");
            assert_eq!(set_flushing(false), supported.then_some(false));
        })
        .join()
        .expect("the test thread");
        // the other thread's setting never reached this one
        assert!(!flushing());
    }
}
