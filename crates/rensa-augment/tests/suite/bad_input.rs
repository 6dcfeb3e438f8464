//! Bad input gives a typed error naming the file, operation or parameter; nothing panics,
//! including on random bytes and random pipelines.

use crate::common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rensa_augment::{AugmentError, Image, Pipeline};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A new folder for one call: tests run in parallel threads of one process, and `png_bytes` is
/// called by several of them, so the process id alone does not tell their folders apart.
fn temp_dir(name: &str) -> PathBuf {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "rensa-augment-{name}-{}-{call}",
        std::process::id()
    ));
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
    // a plan for a size no image can have: refused, not drawn (erasing's clamp panicked on it)
    for spec in [
        "erasing",
        "horizontal_flip",
        "center_crop(width=1, height=1)",
    ] {
        let p = Pipeline::parse(spec, 0).unwrap();
        for size in [
            rensa_augment::Size::new(0, 0),
            rensa_augment::Size::new(3, 0),
        ] {
            assert!(
                matches!(p.plan(size, 0, 0), Err(AugmentError::InvalidImage(_))),
                "{spec} on {size}"
            );
        }
    }
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
    let load = |file: &str, text: &str| {
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        Pipeline::load(&path)
    };
    let e = load(
        "unknown.toml",
        "[[steps]]\nop = \"horizontal_flip\"\n[[steps]]\nop = \"flipp\"\n",
    )
    .unwrap_err();
    assert!(
        matches!(&e, AugmentError::UnknownOperation { name, .. } if name == "flipp")
            && e.to_string().contains("unknown.toml"),
        "{e}"
    );
    let e = load(
        "broken.json",
        "{\"steps\": [{\"op\": \"rotate\", \"limit\": 30}",
    )
    .unwrap_err();
    assert!(
        matches!(e, AugmentError::PipelineSyntax { .. }) && e.to_string().contains("broken.json"),
        "{e}"
    );
    // a good TOML file loads
    let good = "seed = 9\n[[steps]]\nop = \"rotate\"\nlimit = 30\n[[steps]]\nop = \"normalize\"\n";
    assert_eq!(load("good.toml", good).unwrap().seed(), 9);
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
