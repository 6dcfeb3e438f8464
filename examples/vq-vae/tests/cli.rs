//! The vq-vae example end to end on a generated MNIST-style fixture (never the real data): it
//! trains the VQ-VAE and the code prior, writes its results and pictures, resumes, and refuses
//! bad options, bad data, mismatched settings and images of another size than the saved
//! model's with clear errors.

use rensa_data::idx::{Labelled, MNIST_FILES, Split, write_mnist_dir};
use std::path::{Path, PathBuf};

fn run(args: &[&str]) -> (bool, String, String) {
    rensa_launch::run_program(env!("CARGO_BIN_EXE_vq-vae"), args)
}

/// Stripe images of `side x side` in a new folder of IDX files.
fn fixture(name: &str, side: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rensa-vq-vae-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let split = Split {
        train: Labelled::stripes(64, side, 10),
        test: Labelled::stripes(20, side, 10),
    };
    write_mnist_dir(&dir, &split).unwrap();
    dir
}

fn args<'a>(data: &'a Path, out: &'a Path, epochs: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--epochs",
        epochs,
        "--prior-epochs",
        "1",
        "--batch-size",
        "16",
        "--codes",
        "16",
        "--dim",
        "4",
        "--hidden",
        "8",
        "--prior-hidden",
        "8",
        "--quiet",
    ];
    a.extend_from_slice(extra);
    a
}

#[test]
fn trains_on_a_fixture_resumes_and_refuses_mismatches() {
    let data = fixture("ok", 8);
    let out = data.join("run");
    for quantizer in ["plain", "ema"] {
        let (ok, stdout, stderr) = run(&args(
            &data,
            &out,
            "1",
            &["--quantizer", quantizer, "--overwrite"],
        ));
        assert!(ok, "{quantizer}: {stderr}");
        assert!(
            stdout.contains("| test images | reconstruction MSE |"),
            "{stdout}"
        );
        for file in [
            "results.json",
            "loss.png",
            "reconstructions.png",
            "codebook-usage.png",
            "samples.png",
            "prior/loss.png",
        ] {
            assert!(out.join(file).exists(), "{quantizer}: {file} missing");
        }
        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap())
                .unwrap();
        let mse = results["test_mse"].as_f64().unwrap();
        let used = results["codes_used"].as_f64().unwrap();
        let bits = results["prior_bits_per_code"].as_f64().unwrap();
        assert!(mse.is_finite() && mse >= 0.0, "{results}");
        assert!(used > 0.0 && used <= 1.0, "{results}");
        assert!(bits.is_finite() && bits >= 0.0, "{results}");
    }
    // a fresh run into the folder needs --overwrite or --resume
    let (ok, _, stderr) = run(&args(&data, &out, "1", &["--quantizer", "ema"]));
    assert!(!ok && stderr.contains("--overwrite"), "{stderr}");
    // resuming with another codebook names the difference
    let (ok, _, stderr) = run(&args(
        &data,
        &out,
        "2",
        &["--resume", "--commitment", "0.5"],
    ));
    assert!(!ok && stderr.contains("commitment"), "{stderr}");
    // the same settings resume to a second epoch
    let (ok, _, stderr) = run(&args(&data, &out, "2", &["--resume"]));
    assert!(ok, "{stderr}");
    // a run stopped before its prior (here: run without one) resumes and trains the prior afresh
    let early = data.join("early");
    let mut first = args(&data, &early, "1", &[]);
    let at = first.iter().position(|a| *a == "--prior-epochs").unwrap();
    first[at + 1] = "0";
    let (ok, _, stderr) = run(&first);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = run(&args(&data, &early, "2", &["--resume"]));
    assert!(ok && early.join("prior/loss.png").exists(), "{stderr}");
    // images of another size than the saved model's
    let wide = fixture("wide", 12);
    let (ok, _, stderr) = run(&args(&wide, &out, "3", &["--resume"]));
    assert!(!ok && stderr.contains("data"), "{stderr}");
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::remove_dir_all(&wide).unwrap();
}

#[test]
fn bad_options_and_data_are_refused_with_clear_errors() {
    let data = fixture("bad", 8);
    let out = data.join("run");
    for (extra, message) in [
        (&["--quantizer", "gumbel"][..], "gumbel"),
        (&["--checkpoint-every", "0"], "must be at least 1"),
        (&["--decay", "1"], "--decay is out of range"),
        (&["--commitment=-1"], "--commitment is out of range"),
        (&["--reseed-below", "nan"], "--reseed-below is out of range"),
    ] {
        let (ok, _, stderr) = run(&args(&data, &out, "1", extra));
        assert!(!ok && stderr.contains(message), "{extra:?}: {stderr}");
    }
    // sides that are not multiples of 4
    let odd = fixture("odd", 10);
    let (ok, _, stderr) = run(&args(&odd, &odd.join("run"), "1", &[]));
    assert!(!ok && stderr.contains("multiples of 4"), "{stderr}");
    // an image file cut short
    let images = data.join(format!("{}.gz", MNIST_FILES[0]));
    let bytes = std::fs::read(&images).unwrap();
    std::fs::write(&images, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, _, stderr) = run(&args(&data, &out, "1", &[]));
    assert!(
        !ok && stderr.contains("train-images-idx3-ubyte"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::remove_dir_all(&odd).unwrap();
}
