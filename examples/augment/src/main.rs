//! `cargo run --release -p augment [--features wgpu] -- [IMAGE] [--pipeline "..."] [--out DIR]`
//!
//! Writes contact sheets of augmented variants of an image: one per operation and one for a
//! pipeline given on the command line or in a JSON/TOML file, and logs the pipeline's drawn
//! parameters so that they can be replayed (`--replay`).

use anyhow::{Context, Result};
use augment::{DEFAULT_PIPELINE, demonstrations, write_sheet};
use burn::tensor::Tensor;
use clap::Parser;
use rensa_augment::{Image, Pipeline, Plan, contact_sheet};
use std::path::PathBuf;

// The backend of the tensor path (wgpu with the `wgpu` feature); rensa-launch also brings the
// caching allocator.
use rensa_launch::Inner as B;

/// Contact sheets of augmented images: one per operation and one for a pipeline.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// The image (PNG, JPEG, BMP or GIF); default: coffee.png from the assets next to the
    /// program or in the rensa workspace.
    image: Option<PathBuf>,
    /// The pipeline, e.g. "horizontal_flip rotate(limit=30) color_jitter(hue=0.05)".
    #[arg(long, conflicts_with = "pipeline_file")]
    pipeline: Option<String>,
    /// A pipeline file: JSON or TOML ({"seed": 0, "steps": [{"op": "rotate", "limit": 30}]}).
    #[arg(long)]
    pipeline_file: Option<PathBuf>,
    /// Replay the plans logged by an earlier run (plans.json) instead of drawing new ones.
    #[arg(long)]
    replay: Option<PathBuf>,
    /// Variants per sheet.
    #[arg(long, default_value_t = 16, value_parser = rensa_launch::at_least_one)]
    count: usize,
    /// Seed of the draws (default: the pipeline file's, or 0).
    #[arg(long)]
    seed: Option<u64>,
    /// Longer side the image is resized to first (0: keep).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Only the pipeline sheet, not one per operation.
    #[arg(long)]
    pipeline_only: bool,
    /// Also run the pipeline sheet's batch through the tensor path on the backend (ndarray,
    /// or wgpu with --features wgpu) and write it as pipeline_tensor.png.
    #[arg(long, conflicts_with = "replay")]
    tensor: bool,
    /// Output folder.
    #[arg(long, default_value = "augment-out")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let path = match &args.image {
        Some(path) => path.clone(),
        None => rensa_launch::find_asset("coffee.png", "the IMAGE argument")?,
    };
    let mut img = Image::open(&path)?;
    if args.size > 0 {
        let (w, h) = (img.width(), img.height());
        let s = args.size as f64 / w.max(h) as f64;
        let (nw, nh) = (
            ((w as f64 * s).round() as usize).max(1),
            ((h as f64 * s).round() as usize).max(1),
        );
        img = Pipeline::parse(&format!("resize(width={nw}, height={nh})"), 0)?.apply(&img, 0, 0)?;
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let seed = args.seed.unwrap_or(0);
    let pipeline = match (&args.pipeline, &args.pipeline_file) {
        (Some(spec), _) => Pipeline::parse(spec, seed)?,
        (None, Some(file)) => {
            let p = Pipeline::load(file)?;
            match args.seed {
                Some(s) => p.with_seed(s),
                None => p,
            }
        }
        (None, None) => Pipeline::parse(DEFAULT_PIPELINE, seed)?,
    };

    let demos = if args.pipeline_only {
        Vec::new()
    } else {
        demonstrations(img.width(), img.height())
    };
    let bar = rensa_train::progress::bar(demos.len() as u64 + 1, "sheets", args.quiet);
    let mut rows = Vec::new();
    for (stem, spec) in &demos {
        let p = Pipeline::parse(spec, seed).with_context(|| format!("demonstration {stem}"))?;
        let (report, _) = write_sheet(&p, &img, args.count, &args.out, stem)?;
        rows.push((stem.clone(), report));
        bar.inc(1);
    }

    // The pipeline sheet: drawn (and logged), or replayed from a log.
    let (report, plans) = if let Some(log) = &args.replay {
        let text =
            std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
        let plans: Vec<Plan> = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a plan log", log.display()))?;
        let variants = plans
            .iter()
            .map(|p| p.apply(&img))
            .collect::<rensa_augment::Result<Vec<_>>>()?;
        let file = args.out.join("pipeline_replayed.png");
        contact_sheet(&variants, 4, 255).save(&file)?;
        let report = augment::SheetReport {
            file: file.display().to_string(),
            count: plans.len(),
            micros_per_image: f64::NAN,
        };
        (report, plans)
    } else {
        write_sheet(&pipeline, &img, args.count, &args.out, "pipeline")?
    };
    rensa_train::write_atomic(
        &args.out.join("plans.json"),
        serde_json::to_string_pretty(&plans)?.as_bytes(),
    )?;
    // (a replay's plans came from another run's pipeline, which this one need not be)
    if args.replay.is_none() {
        rensa_train::write_atomic(
            &args.out.join("pipeline.json"),
            pipeline.to_json().as_bytes(),
        )?;
    }
    rows.push(("pipeline".into(), report));
    bar.inc(1);
    bar.finish_and_clear();

    if args.tensor {
        let device = rensa_launch::open_device()?;
        let batch = vec![img.clone(); args.count];
        let t: Tensor<B, 4> = pipeline.apply_tensor(&batch, 0, 0, &device)?;
        let [n, c, h, w] = t.dims();
        let data = t
            .permute([0, 2, 3, 1])
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let per = h * w * c;
        // a final normalisation undone for the picture, as the CPU sheet leaves it out
        let (mean, std) = match plans.first().and_then(|p| p.ops.last()) {
            Some(rensa_augment::Op::Normalize { mean, std }) => (*mean, *std),
            _ => ([0.0; 3], [1.0; 3]),
        };
        let images = (0..n)
            .map(|i| {
                let px = data[i * per..(i + 1) * per]
                    .iter()
                    .enumerate()
                    .map(|(k, v)| {
                        let ch = if c == 3 { k % 3 } else { 0 };
                        ((v * std[ch] + mean[ch]) * 255.0 + 0.5).clamp(0.0, 255.0) as u8
                    })
                    .collect();
                Image::new(w, h, c, px)
            })
            .collect::<rensa_augment::Result<Vec<_>>>()?;
        let file = args.out.join("pipeline_tensor.png");
        contact_sheet(&images, 4, 255).save(&file)?;
        println!(
            "tensor path ({}): {}",
            std::any::type_name::<B>()
                .rsplit("::")
                .next()
                .unwrap_or("backend"),
            file.display()
        );
    }

    println!("{:<22} {:>8} {:>12}  file", "sheet", "images", "us/image");
    for (name, r) in &rows {
        let us = if r.micros_per_image.is_nan() {
            "-".to_string()
        } else {
            format!("{:.0}", r.micros_per_image)
        };
        println!("{:<22} {:>8} {:>12}  {}", name, r.count, us, r.file);
    }
    println!("pipeline: {}", args.out.join("pipeline.json").display());
    println!(
        "drawn parameters: {} (replay with --replay)",
        args.out.join("plans.json").display()
    );
    Ok(())
}
