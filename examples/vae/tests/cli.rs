//! The vae example end to end on a generated MNIST-style fixture (never the real data): it
//! trains, writes its results and pictures, resumes, and refuses bad data, mismatched settings
//! and images of another size than the saved model's with clear errors.

use rensa_data::idx::{Idx, Labelled, MNIST_FILES, Split, write_mnist_dir};
use std::path::{Path, PathBuf};

fn run(args: &[&str]) -> (bool, String, String) {
    rensa_launch::run_program(env!("CARGO_BIN_EXE_vae"), args)
}

/// `train` and `test` images of `side x side` (stripes whose width depends on the class) with
/// their labels, gzipped, in a new folder.
fn fixture(name: &str, side: usize, train: usize, test: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rensa-vae-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let split = Split {
        train: Labelled::stripes(train, side, 10),
        test: Labelled::stripes(test, side, 10),
    };
    write_mnist_dir(&dir, &split).unwrap();
    dir
}

fn args<'a>(data: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    epochs(data, out, "1", extra)
}

fn epochs<'a>(data: &'a Path, out: &'a Path, n: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--epochs",
        n,
        "--batch-size",
        "16",
        "--hidden",
        "16",
        "--quiet",
    ];
    a.extend_from_slice(extra);
    a
}

#[test]
fn trains_on_a_fixture_resumes_and_refuses_mismatches() {
    let data = fixture("ok", 8, 64, 20);
    let out = data.join("run");
    for architecture in ["mlp", "conv"] {
        let (ok, stdout, stderr) = run(&args(
            &data,
            &out,
            &[
                "--latent",
                "2",
                "--architecture",
                architecture,
                "--overwrite",
            ],
        ));
        assert!(ok, "{architecture}: {stderr}");
        assert!(
            stdout.contains("| test images | test -ELBO (nats) |"),
            "{stdout}"
        );
        for file in [
            "results.json",
            "loss.png",
            "reconstructions.png",
            "samples.png",
            "interpolations.png",
            "latent-map.png",
        ] {
            assert!(out.join(file).exists(), "{architecture}: {file} missing");
        }
        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap())
                .unwrap();
        let elbo = results["test_neg_elbo"].as_f64().unwrap();
        assert!(elbo.is_finite() && elbo > 0.0, "{results}");
    }
    // a fresh run into the folder needs --overwrite or --resume
    let (ok, _, stderr) = run(&args(
        &data,
        &out,
        &["--latent", "2", "--architecture", "conv"],
    ));
    assert!(!ok && stderr.contains("--overwrite"), "{stderr}");
    // resuming with another latent size names the difference
    let other = ["--latent", "3", "--architecture", "conv", "--resume"];
    let (ok, _, stderr) = run(&epochs(&data, &out, "2", &other));
    assert!(!ok && stderr.contains("latent"), "{stderr}");
    // the same settings resume to a second epoch
    let resume = ["--latent", "2", "--architecture", "conv", "--resume"];
    let (ok, _, stderr) = run(&epochs(&data, &out, "2", &resume));
    assert!(ok, "{stderr}");
    // images of another size than the saved model's
    let wide = fixture("wide", 12, 64, 20);
    let (ok, _, stderr) = run(&epochs(&wide, &out, "3", &resume));
    assert!(!ok && stderr.contains("image_size"), "{stderr}");
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::remove_dir_all(&wide).unwrap();
}

#[test]
fn bad_data_and_settings_are_refused_with_clear_errors() {
    let data = fixture("bad", 8, 32, 10);
    let out = data.join("run");
    // a labels file cut short
    let labels = data.join(format!("{}.gz", MNIST_FILES[1]));
    let bytes = std::fs::read(&labels).unwrap();
    std::fs::write(&labels, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, _, stderr) = run(&args(&data, &out, &[]));
    assert!(
        !ok && stderr.contains("train-labels-idx1-ubyte"),
        "{stderr}"
    );
    // labels of another count than the images
    Idx {
        dims: vec![31],
        data: vec![0; 31],
    }
    .write(&labels)
    .unwrap();
    let (ok, _, stderr) = run(&args(&data, &out, &[]));
    assert!(
        !ok && stderr.contains("31 labels for the 32 images"),
        "{stderr}"
    );
    // a folder without the files
    let empty = data.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, _, stderr) = run(&args(&empty, &out, &[]));
    assert!(
        !ok && stderr.contains("no train-images-idx3-ubyte"),
        "{stderr}"
    );
    for (extra, message) in [
        (
            &["--architecture", "resnet"][..],
            "unknown architecture \"resnet\"",
        ),
        (&["--latent", "0"], "must be at least 1"),
        (&["--lr", "nan"], "--lr must be a finite number > 0"),
    ] {
        let (ok, _, stderr) = run(&args(&data, &out, extra));
        assert!(!ok && stderr.contains(message), "{extra:?}: {stderr}");
    }
    std::fs::remove_dir_all(&data).unwrap();
}
