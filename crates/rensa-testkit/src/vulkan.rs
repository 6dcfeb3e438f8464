//! Whether the machine has what wgpu needs (no burn: `cargo xtask test` uses it before any
//! test is built).

/// Folders where Vulkan loaders look for installable client drivers.
const ICD_DIRS: &[&str] = &[
    "/usr/share/vulkan/icd.d",
    "/etc/vulkan/icd.d",
    "/usr/local/share/vulkan/icd.d",
];

/// Whether this machine has what wgpu needs on Linux: the Vulkan loader and at least one
/// installable client driver (a GPU's, or Mesa's lavapipe). Other systems are assumed to have
/// their native graphics API.
pub fn vulkan_present() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let has_icd = ICD_DIRS.iter().any(|d| {
        std::fs::read_dir(d)
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.path().extension().is_some_and(|x| x == "json"))
            })
            .unwrap_or(false)
    }) || std::env::var_os("VK_DRIVER_FILES").is_some()
        || std::env::var_os("VK_ICD_FILENAMES").is_some();
    let has_loader = [
        "/usr/lib/x86_64-linux-gnu/libvulkan.so.1",
        "/usr/lib/aarch64-linux-gnu/libvulkan.so.1",
        "/usr/lib64/libvulkan.so.1",
        "/usr/lib/libvulkan.so.1",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists());
    has_icd && has_loader
}

/// How to get the wgpu tests running where Vulkan is missing.
pub const VULKAN_HINT: &str = "apt-get install mesa-vulkan-drivers libvulkan1 (Mesa's lavapipe runs them on the CPU), or run `cargo xtask test`, which installs it";
