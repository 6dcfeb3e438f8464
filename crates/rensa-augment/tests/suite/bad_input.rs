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

#[test]
fn sizes_are_checked_before_anything_is_allocated() {
    // sides whose product overflows, or whose buffer would be terabytes: refused at once
    for (w, h, c) in [
        (1 << 40, 1 << 40, 3),
        (1 << 20, 1 << 20, 3),
        (100_000, 100_000, 4),
    ] {
        assert!(
            matches!(
                Image::filled(w, h, c, 0),
                Err(AugmentError::InvalidImage(_))
            ),
            "{w}x{h}x{c}"
        );
    }
    assert_eq!(Image::filled(3, 2, 1, 9).unwrap().data(), [9; 6]);
}

#[test]
fn shears_that_would_mirror_or_flatten_the_image_are_refused() {
    // tan(40°)² = 0.70: the shear map's determinant 1 - tan x tan y could fall to 0.30
    for spec in [
        "shear(limit=40)",
        "affine(shear_x=[45,45], shear_y=[45,45])",
        "affine(shear_x=[-80,-60], shear_y=[-30,-20])",
    ] {
        let e = Pipeline::parse(spec, 0).unwrap_err();
        assert!(
            matches!(e, AugmentError::Parameter { .. }) && e.to_string().contains("shear"),
            "{spec}: {e}"
        );
    }
    // one axis alone may go to 80°, both together to 35°; opposite signs never squeeze
    for spec in [
        "affine(shear_x=[-80,80])",
        "shear(limit=35)",
        "affine(shear_x=[0,80], shear_y=[-80,0])",
    ] {
        let p = Pipeline::parse(spec, 0).unwrap();
        let img = common::picture(20, 16);
        for i in 0..200 {
            let plan = p.plan(img.size(), 0, i).unwrap();
            for op in &plan.ops {
                if let rensa_augment::Op::Affine { inverse, .. } = op {
                    let [a, b, _, d, e, _] = inverse.0;
                    assert!(a * e - b * d > 0.0, "{spec}, draw {i}: mirrored");
                }
            }
        }
    }
}

#[test]
fn a_random_resized_crop_that_finds_no_window_takes_the_central_one() {
    // no window of the ratio range fits a 1000x10 image: torchvision's central crop
    let img = Image::filled(1000, 10, 1, 5).unwrap();
    let p = Pipeline::parse("random_resized_crop(width=8, height=8)", 0).unwrap();
    for i in 0..20 {
        let plan = p.plan(img.size(), 0, i).unwrap();
        match plan.ops.first() {
            Some(rensa_augment::Op::Crop { x, y, width, .. }) => {
                assert_eq!((*x, *y), ((1000 - width) / 2, 0), "draw {i}");
            }
            other => panic!("draw {i}: {other:?}"),
        }
    }
}

#[test]
fn crafted_plans_are_refused_where_the_paths_would_differ() {
    use rensa_augment::{Op, Plan, Size};
    let size = Size::new(8, 8);
    let plan = |ops: Vec<Op>| {
        let mut p = Pipeline::parse("horizontal_flip(p=1)", 0)
            .unwrap()
            .plan(size, 0, 0)
            .unwrap();
        p.output = size;
        p.ops = ops;
        p
    };
    let normalize = || Op::Normalize {
        mean: [0.5; 3],
        std: [0.2; 3],
    };
    let cases: Vec<(Plan, &str)> = vec![
        (plan(vec![Op::Blur { sigma: 1e-23 }]), "sigma"),
        (
            plan(vec![Op::Linear {
                alpha: 100.0,
                beta: 0.0,
            }]),
            "gain",
        ),
        (
            plan(vec![Op::Linear {
                alpha: 1.0,
                beta: 40.0,
            }]),
            "offset",
        ),
        (
            plan(vec![
                normalize(),
                Op::Linear {
                    alpha: 1.2,
                    beta: 0.0,
                },
            ]),
            "last",
        ),
        (plan(vec![normalize(), normalize()]), "last"),
        // a contrast whose offset, (1 - factor) · mean, the CPU kernel would clamp
        (
            plan(vec![Op::Contrast { factor: 60.0 }]),
            "factor 60 outside ±31",
        ),
    ];
    for (p, expected) in cases {
        let e = p.validate(size).unwrap_err().to_string();
        assert!(e.contains(expected), "{:?}: {e}", p.ops);
    }
    assert!(
        plan(vec![Op::Blur { sigma: 0.01 }, normalize()])
            .validate(size)
            .is_ok()
    );
    // weights whose sum is infinite would always pick the last step
    let e = Pipeline::parse(
        "one_of(steps=[{\"op\":\"hue\"},{\"op\":\"grayscale\"}], weights=[1e308, 1e308])",
        0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("weights"), "{e}");
}

#[test]
fn a_batch_of_another_channel_count_is_refused_by_the_tensor_path() {
    use burn::tensor::Tensor;
    let p = Pipeline::parse("normalize", 0).unwrap();
    let plan = p.plan(rensa_augment::Size::new(8, 8), 0, 0).unwrap();
    let x = Tensor::<rensa_testkit::TestBackend, 4>::zeros([1, 4, 8, 8], &Default::default());
    let e = rensa_augment::apply_plans(x, &[plan]).unwrap_err();
    assert!(
        matches!(&e, AugmentError::Batch(m) if m.contains("4 channels")),
        "{e}"
    );
}
