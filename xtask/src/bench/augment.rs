//! `cargo xtask bench augment`: images/s of rensa-augment's CPU kernels, one thread, per
//! operation on a 256x256 RGB u8 image (assets/coffee.png resized), against albumentations
//! (OpenCV) on the same image with `--peers`; the CPU path's all-core batch throughput; and the
//! tensor path's images/s at batch 64 on the chosen backend.
//!
//! Each rensa measurement is what a data loader does per image: draw the parameters (keyed by
//! the sample index) and produce a new image (floats for `normalize` and the pipeline).

use anyhow::{Context, Result};
use burn::backend::{NdArray, Wgpu};
use burn::tensor::backend::Backend;
use rensa_augment::{Image, Pipeline};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Instant;

use super::{BackendKind, BenchArgs, command_line, cpu_description, median, record, today};

/// (name shared with the peer script, rensa's pipeline in the command-line form).
const OPS: &[(&str, &str)] = &[
    ("horizontal_flip", "horizontal_flip(p=1)"),
    ("vertical_flip", "vertical_flip(p=1)"),
    ("rotate(+-30)", "rotate(limit=30)"),
    (
        "affine(shift,scale,rot)",
        "affine(translate_x=[-0.1,0.1], translate_y=[-0.1,0.1], scale=[0.9,1.1], rotate=[-15,15])",
    ),
    ("random_crop(224)", "random_crop(width=224, height=224)"),
    (
        "random_resized_crop(224)",
        "random_resized_crop(width=224, height=224)",
    ),
    ("brightness_contrast", "brightness_contrast"),
    ("color_jitter", "color_jitter"),
    ("hue_saturation_value", "hue_saturation_value"),
    // albumentations' default kernel sizes 3..7 correspond to sigma 0.8..1.4
    ("gaussian_blur", "gaussian_blur(range=[0.8,1.4])"),
    ("gaussian_noise", "gaussian_noise"),
    ("erasing", "erasing"),
    ("normalize", "normalize"),
    (
        "pipeline(flip+affine+jitter+normalize)",
        "horizontal_flip(p=0.5) affine(p=0.5, translate_x=[-0.1,0.1], translate_y=[-0.1,0.1], rotate=[-15,15]) color_jitter(p=0.5) normalize",
    ),
];

const PIPELINE: &str = "pipeline(flip+affine+jitter+normalize)";

/// The benchmark image: assets/coffee.png resized to 256x256 (bilinear), also written to
/// target/bench-augment/input.png for the peer.
fn bench_image() -> Result<(Image, std::path::PathBuf)> {
    let root = crate::peers::workspace_root();
    let src = Image::open(root.join("assets/coffee.png"))?;
    let img = Pipeline::parse("resize(width=256, height=256)", 0)?.apply(&src, 0, 0)?;
    let dir = root.join("target/bench-augment");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("input.png");
    img.save(&path)?;
    Ok((img, path))
}

/// Median images/s of `pipeline` over `runs` runs of `n` images on this thread.
fn single_thread(
    pipeline: &Pipeline,
    img: &Image,
    n: usize,
    runs: usize,
    floats: bool,
) -> Result<f64> {
    let one = |i: u64| -> Result<usize> {
        Ok(if floats {
            pipeline.apply_f32(img, 0, i)?.len()
        } else {
            pipeline.apply(img, 0, i)?.data().len()
        })
    };
    for i in 0..20 {
        std::hint::black_box(one(i)?);
    }
    let mut rates = Vec::new();
    for r in 0..runs {
        let start = Instant::now();
        for i in 0..n {
            std::hint::black_box(one((r * n + i) as u64)?);
        }
        rates.push(n as f64 / start.elapsed().as_secs_f64());
    }
    Ok(median(rates))
}

/// Median images/s of the CPU path over a batch of 64 on all cores, stacked into a tensor.
fn all_cores(pipeline: &Pipeline, img: &Image, runs: usize) -> Result<f64> {
    let batch: Vec<Image> = vec![img.clone(); 64];
    let device = Default::default();
    let mut rates = Vec::new();
    for r in 0..runs + 2 {
        let start = Instant::now();
        for k in 0..4u64 {
            let t = pipeline.to_tensor::<NdArray>(&batch, r as u64, k * 64, &device)?;
            std::hint::black_box(t);
        }
        if r >= 2 {
            rates.push(256.0 / start.elapsed().as_secs_f64());
        }
    }
    Ok(median(rates))
}

/// Median images/s of the tensor path on batches of 64 (synced).
fn tensor_path<B: Backend>(
    pipeline: &Pipeline,
    img: &Image,
    device: &B::Device,
    runs: usize,
) -> Result<f64> {
    let batch: Vec<Image> = vec![img.clone(); 64];
    let mut rates = Vec::new();
    for r in 0..runs + 2 {
        let start = Instant::now();
        let t = pipeline.apply_tensor::<B>(&batch, r as u64, 0, device)?;
        let _ = t.into_data();
        B::sync(device).ok();
        if r >= 2 {
            rates.push(64.0 / start.elapsed().as_secs_f64());
        }
    }
    Ok(median(rates))
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let (img, path) = bench_image()?;
    let runs = args.runs.unwrap_or(5);
    let n = 300;
    let peer = if args.peers {
        let out = crate::peers::run_script(
            "albumentations_augment.py",
            &[path.display().to_string(), n.to_string(), runs.to_string()],
        )?;
        let line = out
            .lines()
            .last()
            .context("no output from the albumentations peer")?;
        let v: serde_json::Value = serde_json::from_str(line)?;
        let name = v["peer"].as_str().unwrap_or("albumentations").to_string();
        let rates: HashMap<String, f64> = v["img_per_s"]
            .as_object()
            .context("peer output without img_per_s")?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
            .collect();
        Some((name, rates))
    } else {
        None
    };

    let mut table = String::new();
    writeln!(
        table,
        "| operation | rensa img/s (1 thread) | albumentations img/s (1 thread) | rensa / albumentations |"
    )?;
    writeln!(table, "| --- | ---: | ---: | ---: |")?;
    let single = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let mut below = Vec::new();
    for (name, spec) in OPS {
        let pipeline = Pipeline::parse(spec, 1)?;
        let floats = spec.contains("normalize");
        let ours = single.install(|| single_thread(&pipeline, &img, n, runs, floats))?;
        let theirs = peer.as_ref().and_then(|(_, r)| r.get(*name).copied());
        let ratio = theirs.map_or("-".into(), |t| format!("{:.2}x", ours / t));
        if theirs.is_some_and(|t| ours < t) {
            below.push(*name);
        }
        let theirs = theirs.map_or("-".into(), |t| format!("{t:.0}"));
        writeln!(table, "| {name} | {ours:.0} | {theirs} | {ratio} |")?;
        eprintln!("{name}: rensa {ours:.0} img/s, albumentations {theirs}");
    }
    let pipeline = Pipeline::parse(OPS.iter().find(|o| o.0 == PIPELINE).expect("listed").1, 1)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let all = all_cores(&pipeline, &img, runs)?;
    let (tensor, adapter) = match args.backend {
        BackendKind::Ndarray => (
            tensor_path::<NdArray>(&pipeline, &img, &Default::default(), runs)?,
            "ndarray (CPU)".to_string(),
        ),
        BackendKind::Wgpu => {
            let device = burn::backend::wgpu::WgpuDevice::default();
            (
                tensor_path::<Wgpu>(&pipeline, &img, &device, runs)?,
                "wgpu (default adapter; on a machine without a GPU, Mesa's software lavapipe: not a GPU figure)".to_string(),
            )
        }
    };
    let mut section = String::new();
    writeln!(section, "## Augmentation, {}", today())?;
    writeln!(section)?;
    writeln!(section, "- machine: {}", cpu_description())?;
    writeln!(section, "- command: `{}`", command_line())?;
    writeln!(
        section,
        "- image: assets/coffee.png resized to 256x256 RGB u8; each figure the median of {runs} runs of {n} images; rensa draws each image's parameters from its sample key and writes a new image (CHW f32 for normalize and the pipeline)"
    )?;
    if let Some((name, _)) = &peer {
        writeln!(
            section,
            "- peer: {name}, one thread (OMP_NUM_THREADS=1, cv2.setNumThreads(1)), same image, `xtask/peers/albumentations_augment.py`"
        )?;
    }
    writeln!(section)?;
    section.push_str(&table);
    writeln!(section)?;
    writeln!(
        section,
        "- CPU path, all {cores} cores, the pipeline on batches of 64 stacked into a `[64, 3, 256, 256]` tensor: {all:.0} img/s"
    )?;
    writeln!(
        section,
        "- tensor path, the pipeline on batches of 64 on {adapter}: {tensor:.0} img/s"
    )?;
    if peer.is_some() {
        if below.is_empty() {
            writeln!(
                section,
                "- rensa is at least as fast as albumentations on every operation"
            )?;
        } else {
            writeln!(
                section,
                "- slower than albumentations: {}",
                below.join(", ")
            )?;
        }
    }
    println!("\n{section}");
    if !args.no_record {
        record(&section)?;
    }
    Ok(())
}
