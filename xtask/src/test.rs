//! `cargo xtask test`: the whole test suite, on ndarray and on wgpu.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::Path;
use std::process::Command;

/// `cargo xtask test` arguments.
#[derive(Args, Clone, Debug)]
pub struct TestArgs {
    /// Do not try to install a Vulkan driver (fail instead when none is found).
    #[arg(long)]
    pub no_install: bool,
    /// Extra arguments passed to `cargo test` (after `--workspace`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cargo_args: Vec<String>,
}

use rensa_testkit::vulkan_present;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

/// Makes sure a Vulkan loader and driver are present, installing Mesa's (which includes the
/// lavapipe software driver) with apt-get when running as root on Debian/Ubuntu.
pub fn ensure_vulkan(install: bool) -> Result<()> {
    if vulkan_present() {
        return Ok(());
    }
    let hint = "the wgpu tests need a Vulkan driver: `apt-get install mesa-vulkan-drivers libvulkan1` \
                (Mesa's lavapipe runs them on the CPU when there is no GPU)";
    if !install || !is_root() || !Path::new("/usr/bin/apt-get").exists() {
        bail!("no Vulkan driver found; {hint}");
    }
    eprintln!("installing Mesa's Vulkan drivers (lavapipe) for the wgpu tests...");
    let apt = |args: &[&str]| -> Result<()> {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("running apt-get")?;
        if !status.success() {
            bail!("apt-get {} failed ({status}); {hint}", args.join(" "));
        }
        Ok(())
    };
    apt(&["update", "-qq"])?;
    apt(&["install", "-y", "-qq", "mesa-vulkan-drivers", "libvulkan1"])?;
    if !vulkan_present() {
        bail!("Mesa's Vulkan drivers were installed but no driver was found; {hint}");
    }
    Ok(())
}

pub fn run(args: TestArgs) -> Result<()> {
    ensure_vulkan(!args.no_install)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(crate::peers::workspace_root())
        .args(["test", "--workspace"])
        .args(&args.cargo_args)
        // the wgpu tests fail instead of skipping when the driver is missing
        .env("RENSA_REQUIRE_WGPU", "1")
        .status()
        .context("running cargo test")?;
    if !status.success() {
        bail!("cargo test failed ({status})");
    }
    Ok(())
}
