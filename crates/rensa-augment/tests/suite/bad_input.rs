//! Bad input gives a typed error naming the file, operation or parameter; nothing panics,
//! including on random bytes and random pipelines.

use crate::common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rensa_augment::transforms::OPERATIONS;
use rensa_augment::{AugmentError, Image, Pipeline};
use std::path::PathBuf;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rensa-augment-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn png_bytes(img: &Image) -> Vec<u8> {
    let dir = temp_dir("png");
    let path = dir.join("x.png");
    img.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    bytes
}

#[test]
fn files_that_cannot_be_read_are_named() {
    let dir = temp_dir("files");
    let missing = dir.join("missing.png");
    let e = Image::open(&missing).unwrap_err();
    assert!(
        matches!(e, AugmentError::Io { .. }) && e.to_string().contains("missing.png"),
        "{e}"
    );

    let good = png_bytes(&common::picture(16, 12));
    let truncated = dir.join("truncated.png");
    std::fs::write(&truncated, &good[..good.len() / 3]).unwrap();
    let e = Image::open(&truncated).unwrap_err();
    assert!(
        matches!(e, AugmentError::Decode { .. }) && e.to_string().contains("truncated.png"),
        "{e}"
    );

    let mut corrupt = good.clone();
    for b in corrupt[40..].iter_mut() {
        *b ^= 0x5a;
    }
    let path = dir.join("corrupt.png");
    std::fs::write(&path, &corrupt).unwrap();
    let e = Image::open(&path).unwrap_err();
    assert!(matches!(e, AugmentError::Decode { .. }), "{e}");

    for (file, bytes) in [
        ("tiff.tif", b"II*\0\x08\0\0\0garbage".to_vec()),
        ("text.png", b"just some text, not an image".to_vec()),
        ("empty.png", Vec::new()),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, &bytes).unwrap();
        let e = Image::open(&path).unwrap_err();
        assert!(
            matches!(e, AugmentError::UnsupportedFormat { .. }),
            "{file}: {e}"
        );
        assert!(e.to_string().contains(file), "{e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn images_without_pixels_are_rejected() {
    assert!(matches!(
        Image::new(0, 5, 3, vec![]),
        Err(AugmentError::InvalidImage(_))
    ));
    assert!(matches!(
        Image::new(5, 0, 1, vec![]),
        Err(AugmentError::InvalidImage(_))
    ));
    assert!(matches!(
        Image::filled(4, 4, 4, 0),
        Err(AugmentError::InvalidImage(_))
    ));
}

#[test]
fn bad_parameters_and_pipelines_are_named() {
    let img = common::picture(50, 40);
    let e = Pipeline::parse("random_crop(width=60, height=10)", 0)
        .unwrap()
        .apply(&img, 0, 0)
        .unwrap_err();
    assert!(
        matches!(
            e,
            AugmentError::CropTooLarge {
                op: "random_crop",
                crop_width: 60,
                ..
            }
        ),
        "{e}"
    );
    let e = Pipeline::parse("center_crop(width=10, height=41)", 0)
        .unwrap()
        .apply(&img, 0, 0)
        .unwrap_err();
    assert!(
        e.to_string().contains("10x41") && e.to_string().contains("50x40"),
        "{e}"
    );

    for (spec, op) in [
        ("horizontal_flip(p=1.5)", "horizontal_flip"),
        ("color_jitter(p=-0.1)", "color_jitter"),
        ("random_apply(p=2, steps=[])", "random_apply"),
    ] {
        let e = Pipeline::parse(spec, 0).unwrap_err();
        assert!(
            matches!(e, AugmentError::Probability { .. }) && e.to_string().contains(op),
            "{spec}: {e}"
        );
    }
    for spec in [
        "rotate(limit=\"a lot\")",
        "brightness(range=[1.5, 0.5])",
        "resize(width=0, height=10)",
        "resize(width=100000, height=10)",
        "gaussian_blur(range=[-1, 2])",
        "normalize(std=[0, 1, 1])",
        "hue(range=[-0.7, 0.1])",
        "one_of(steps=[])",
    ] {
        let e = Pipeline::parse(spec, 0).unwrap_err();
        assert!(
            matches!(
                e,
                AugmentError::Parameter { .. } | AugmentError::PipelineSyntax { .. }
            ),
            "{spec}: {e}"
        );
    }
    let e = Pipeline::parse("rotate(limt=30)", 0).unwrap_err();
    assert!(e.to_string().contains("limt"), "{e}");
    let e = Pipeline::parse("normalize horizontal_flip", 0).unwrap_err();
    assert!(e.to_string().contains("last step"), "{e}");

    let dir = temp_dir("pipelines");
    for (file, text) in [
        ("empty.json", "{}"),
        ("empty.toml", ""),
        ("no-steps.toml", "seed = 3\nsteps = []\n"),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        let e = Pipeline::load(&path).unwrap_err();
        assert!(
            matches!(e, AugmentError::EmptyPipeline { .. }) && e.to_string().contains(file),
            "{file}: {e}"
        );
    }
    let path = dir.join("unknown.toml");
    std::fs::write(
        &path,
        "[[steps]]\nop = \"horizontal_flip\"\n[[steps]]\nop = \"flipp\"\n",
    )
    .unwrap();
    let e = Pipeline::load(&path).unwrap_err();
    assert!(
        matches!(&e, AugmentError::UnknownOperation { name, .. } if name == "flipp")
            && e.to_string().contains("unknown.toml"),
        "{e}"
    );
    let path = dir.join("broken.json");
    std::fs::write(&path, "{\"steps\": [{\"op\": \"rotate\", \"limit\": 30}").unwrap();
    let e = Pipeline::load(&path).unwrap_err();
    assert!(
        matches!(e, AugmentError::PipelineSyntax { .. }) && e.to_string().contains("broken.json"),
        "{e}"
    );
    // a good TOML file loads
    let path = dir.join("good.toml");
    std::fs::write(
        &path,
        "seed = 9\n[[steps]]\nop = \"rotate\"\nlimit = 30\n[[steps]]\nop = \"normalize\"\n",
    )
    .unwrap();
    assert_eq!(Pipeline::load(&path).unwrap().seed(), 9);
    std::fs::remove_dir_all(&dir).unwrap();

    // batches that cannot be stacked
    let p = Pipeline::parse("horizontal_flip", 0).unwrap();
    let mixed = vec![common::picture(20, 20), common::picture(21, 20)];
    let e = p
        .to_tensor::<rensa_testkit::TestBackend>(&mixed, 0, 0, &Default::default())
        .unwrap_err();
    assert!(matches!(e, AugmentError::Batch(_)), "{e}");
    let e = p
        .apply_tensor::<rensa_testkit::TestBackend>(&mixed, 0, 0, &Default::default())
        .unwrap_err();
    assert!(matches!(e, AugmentError::Batch(_)), "{e}");
}

#[test]
fn random_bytes_never_panic_the_decoder() {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let good = png_bytes(&common::picture(9, 7));
    for i in 0..400 {
        let bytes: Vec<u8> = match i % 4 {
            0 => (0..rng.random_range(0..200))
                .map(|_| rng.random())
                .collect(),
            1 => good[..rng.random_range(0..good.len())].to_vec(),
            2 => {
                let mut b = good.clone();
                for _ in 0..rng.random_range(1..8) {
                    let k = rng.random_range(0..b.len());
                    b[k] = rng.random();
                }
                b
            }
            _ => {
                // a JPEG or GIF signature followed by noise
                let mut b = if i % 8 == 3 {
                    vec![0xff, 0xd8, 0xff, 0xe0]
                } else {
                    b"GIF89a".to_vec()
                };
                b.extend((0..rng.random_range(0..100)).map(|_| rng.random::<u8>()));
                b
            }
        };
        if let Ok(img) = Image::decode(&bytes) {
            assert!(img.width() > 0 && img.height() > 0);
        }
    }
}

/// A random value for a parameter: numbers of every sign and size, ranges, strings.
fn random_value(rng: &mut ChaCha8Rng) -> serde_json::Value {
    let num = |rng: &mut ChaCha8Rng| -> f64 {
        match rng.random_range(0..4) {
            0 => rng.random_range(-2.0..2.0),
            1 => rng.random_range(0.0..1.0),
            2 => rng.random_range(-500.0..500.0),
            _ => rng.random_range(0..64) as f64,
        }
    };
    match rng.random_range(0..5) {
        0 | 1 => serde_json::json!(num(rng)),
        2 => serde_json::json!([num(rng), num(rng)]),
        3 => serde_json::json!(rng.random_range(0..300u64)),
        _ => serde_json::json!(["reflect", "edge", "nearest", "bilinear"][rng.random_range(0..4)]),
    }
}

#[test]
fn random_pipelines_give_images_or_errors_never_panics() {
    let fields = [
        "p",
        "limit",
        "range",
        "width",
        "height",
        "scale",
        "ratio",
        "rotate",
        "translate_x",
        "shear_y",
        "brightness",
        "contrast",
        "saturation",
        "hue",
        "std",
        "mean",
        "holes",
        "fill",
        "left",
        "top",
        "right",
        "bottom",
        "border",
        "interp",
    ];
    let leaves: Vec<&str> = OPERATIONS
        .iter()
        .copied()
        .filter(|o| !matches!(*o, "compose" | "random_apply" | "one_of"))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut built, mut applied) = (0, 0);
    for trial in 0..6000 {
        let steps: Vec<serde_json::Value> = (0..rng.random_range(1..4))
            .map(|_| {
                let mut obj = serde_json::Map::new();
                obj.insert(
                    "op".into(),
                    leaves[rng.random_range(0..leaves.len())].into(),
                );
                for _ in 0..rng.random_range(0..3) {
                    obj.insert(
                        fields[rng.random_range(0..fields.len())].into(),
                        random_value(&mut rng),
                    );
                }
                serde_json::Value::Object(obj)
            })
            .collect();
        let text = serde_json::json!({ "seed": trial, "steps": steps }).to_string();
        let Ok(p) = Pipeline::from_json(&text, "fuzz") else {
            continue;
        };
        built += 1;
        let (w, h) = (rng.random_range(1..24), rng.random_range(1..24));
        let c = if rng.random_bool(0.8) { 3 } else { 1 };
        let data = (0..w * h * c).map(|_| rng.random()).collect();
        let img = Image::new(w, h, c, data).unwrap();
        if let Ok(out) = p.apply(&img, 0, trial) {
            applied += 1;
            assert!(out.width() > 0 && out.height() > 0, "{text}");
            let f = p.apply_f32(&img, 0, trial).unwrap();
            assert!(f.iter().all(|v| v.is_finite()), "{text}");
        }
    }
    // the generator must reach the kernels, not only the validation
    assert!(
        built > 300 && applied > 250,
        "built {built}, applied {applied}"
    );
}
