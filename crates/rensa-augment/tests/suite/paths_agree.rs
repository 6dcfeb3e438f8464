//! The CPU path and the tensor path execute the same draw to the same images (within
//! interpolation and rounding tolerance), on ndarray and on wgpu; draws do not depend on the
//! thread count; a logged plan replays exactly.

use crate::common::{diff_stats, picture};
use burn::tensor::{Tensor, backend::Backend};
use rensa_augment::{Image, Pipeline, Plan};
use rensa_testkit::{TestBackend, WgpuBackend, wgpu_device_or_skip};

/// A pipeline that touches every operation kind the tensor path implements.
const ALL: &[&str] = &[
    "horizontal_flip(p=0.5) rotate(limit=25) zoom(range=[0.9,1.2])",
    "random_resized_crop(width=40, height=32, scale=[0.5,1.0]) vertical_flip",
    "pad(left=3, top=2, right=1, bottom=4, border=\"reflect\") shear(limit=10, border=\"edge\") center_crop(width=40, height=36)",
    "rot90(p=1) resize(width=30, height=30, interp=\"nearest\")",
    "color_jitter(brightness=0.3, contrast=0.3, saturation=0.4, hue=0.1)",
    "brightness_contrast hue_saturation_value gamma grayscale(p=0.5)",
    "shift(limit=0.1, border={\"constant\": 128}) gaussian_blur(range=[0.5, 1.5])",
    "gaussian_noise(std=[0.02, 0.05]) erasing(holes=[1,3])",
    "affine(rotate=[-10,10], translate_x=[-0.05,0.05], scale=[0.9,1.1], shear_x=[-5,5]) color_jitter normalize",
];

fn cpu_floats(p: &Pipeline, images: &[Image]) -> Vec<f32> {
    let t: Tensor<TestBackend, 4> = p.to_tensor(images, 3, 100, &Default::default()).unwrap();
    t.into_data().to_vec::<f32>().unwrap()
}

fn tensor_floats<B: Backend>(p: &Pipeline, images: &[Image], device: &B::Device) -> Vec<f32> {
    let t: Tensor<B, 4> = p.apply_tensor(images, 3, 100, device).unwrap();
    t.into_data().to_vec::<f32>().unwrap()
}

fn check_agreement<B: Backend>(device: &B::Device, backend: &str) {
    let images: Vec<Image> = (0..6).map(|_| picture(48, 40)).collect();
    for spec in ALL {
        let p = Pipeline::parse(spec, 11).unwrap();
        let normalised = spec.contains("normalize");
        // compare in 0..255 units (undo the normalisation's scale for the last pipeline)
        let scale = if normalised { 255.0 * 0.226 } else { 255.0 };
        let a: Vec<f32> = cpu_floats(&p, &images).iter().map(|v| v * scale).collect();
        let b: Vec<f32> = tensor_floats::<B>(&p, &images, device)
            .iter()
            .map(|v| v * scale)
            .collect();
        let (mean, max, above) = diff_stats(&a, &b);
        eprintln!("{backend} `{spec}`: mean {mean:.3} max {max:.1} share>4 {above:.4}");
        assert!(
            mean < 0.6 && max <= 6.0 && above == 0.0,
            "{backend}: `{spec}`: CPU and tensor paths differ (mean {mean}, max {max}, share > 4 levels {above})"
        );
    }
}

/// Plans replayed together whose normalisations differ: each image is normalised with its own
/// plan's mean and std on both paths.
#[test]
fn each_plan_of_a_batch_keeps_its_own_normalization() {
    use rensa_augment::{Op, apply_plans, images_to_tensor};
    let images: Vec<Image> = (0..3).map(|_| picture(16, 12)).collect();
    let p = Pipeline::parse("normalize", 0).unwrap();
    let mut plans = p.plans(&images, 0, 0).unwrap();
    for (k, plan) in plans.iter_mut().enumerate() {
        let k = k as f32;
        plan.ops = vec![Op::Normalize {
            mean: [0.1 * k, 0.2, 0.3 + 0.1 * k],
            std: [0.2 + 0.1 * k, 0.25, 0.3],
        }];
    }
    let device = Default::default();
    let x: Tensor<TestBackend, 4> = images_to_tensor(&images, &device).unwrap();
    let tensor = apply_plans(x, &plans)
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let cpu: Vec<f32> = plans
        .iter()
        .zip(&images)
        .flat_map(|(plan, img)| plan.apply_f32(img).unwrap())
        .collect();
    assert_eq!(cpu.len(), tensor.len());
    let worst = cpu
        .iter()
        .zip(&tensor)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "largest difference {worst}");
}

#[test]
fn cpu_and_tensor_paths_agree_on_ndarray() {
    check_agreement::<TestBackend>(&Default::default(), "ndarray");
}

#[test]
fn cpu_and_tensor_paths_agree_on_wgpu() {
    if let Some(device) = wgpu_device_or_skip() {
        check_agreement::<WgpuBackend>(&device, "wgpu");
    }
}

#[test]
fn draws_do_not_depend_on_threads_and_plans_replay() {
    let images: Vec<Image> = (0..16).map(|i| picture(40 + i % 3, 36)).collect();
    let p = Pipeline::parse(
        "horizontal_flip rotate(limit=30) color_jitter gaussian_noise erasing",
        5,
    )
    .unwrap();
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| p.apply_batch(&images, 2, 0).unwrap())
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(4));
    // one image alone gives what it gave inside the batch
    assert_eq!(p.apply(&images[7], 2, 7).unwrap(), one[7]);
    // another epoch gives another draw
    assert_ne!(p.apply(&images[7], 3, 7).unwrap(), one[7]);
    // a plan logged as JSON replays to the same image
    let plan = p.plan(images[7].size(), 2, 7).unwrap();
    let logged = serde_json::to_string(&plan).unwrap();
    let replayed: Plan = serde_json::from_str(&logged).unwrap();
    assert_eq!(replayed, plan);
    assert_eq!(replayed.apply(&images[7]).unwrap(), one[7]);
    // and the pipeline itself round-trips through JSON
    assert_eq!(Pipeline::from_json(&p.to_json(), "log").unwrap(), p);
}

#[test]
fn what_a_step_reads_beyond_a_crop_is_its_border_not_the_image() {
    let img = picture(40, 30);
    let spec = "center_crop(width=10, height=10) pad(left=3, top=3, right=3, bottom=3, border={\"constant\": 7})";
    let p = Pipeline::parse(spec, 0).unwrap();
    let out = p.apply(&img, 0, 0).unwrap();
    assert_eq!((out.width(), out.height()), (16, 16));
    let floats = tensor_floats::<TestBackend>(&p, std::slice::from_ref(&img), &Default::default());
    assert_eq!(floats.len(), 3 * 16 * 16);
    for y in 0..16 {
        for x in 0..16 {
            if (3..13).contains(&x) && (3..13).contains(&y) {
                continue;
            }
            let px = out.pixel(x, y).unwrap();
            assert!(px.iter().all(|&v| v == 7), "CPU ({x}, {y}): {px:?}");
            for c in 0..3 {
                let v = floats[(c * 16 + y) * 16 + x] * 255.0;
                assert!((v - 7.0).abs() < 0.01, "tensor ({x}, {y}) channel {c}: {v}");
            }
        }
    }
}

/// Both paths' output of `spec` on `img`, in 0..255 units, channel-major.
fn both_paths(spec: &str, img: &Image) -> (Image, Vec<f32>) {
    let p = Pipeline::parse(spec, 0).unwrap();
    let out = p.apply(img, 0, 0).unwrap();
    let floats = tensor_floats::<TestBackend>(&p, std::slice::from_ref(img), &Default::default());
    (out, floats.iter().map(|v| v * 255.0).collect())
}

#[test]
fn an_enlarged_image_keeps_its_edge_pixels_under_a_later_border() {
    // an enlarging resize clamps at its input's edge; a pad after it must not blend the
    // resized image's edge pixels with the pad's fill
    let img = Image::filled(4, 4, 3, 200).unwrap();
    let spec = "resize(width=8, height=8) pad(left=1, top=1, right=1, bottom=1)";
    let (out, floats) = both_paths(spec, &img);
    assert_eq!((out.width(), out.height()), (10, 10));
    for y in 0..10 {
        for x in 0..10 {
            let inside = (1..9).contains(&x) && (1..9).contains(&y);
            let want = if inside { 200.0 } else { 0.0 };
            let px = out.pixel(x, y).unwrap();
            assert!(
                px.iter().all(|&v| v as f32 == want),
                "CPU ({x}, {y}): {px:?}"
            );
            for c in 0..3 {
                let v = floats[(c * 10 + y) * 10 + x];
                assert!(
                    (v - want).abs() < 0.01,
                    "tensor ({x}, {y}) channel {c}: {v}"
                );
            }
        }
    }
}

#[test]
fn a_one_pixel_wide_image_shows_the_border_beside_it() {
    let img = picture(40, 30);
    let spec = "center_crop(width=1, height=10) pad(left=3, top=0, right=3, bottom=0, border={\"constant\": 7})";
    let (out, floats) = both_paths(spec, &img);
    assert_eq!((out.width(), out.height()), (7, 10));
    for y in 0..10 {
        for x in 0..7 {
            let px = out.pixel(x, y).unwrap();
            for c in 0..3 {
                let v = floats[(c * 10 + y) * 7 + x];
                assert!(
                    (v - px[c] as f32).abs() < 0.01,
                    "({x}, {y}) channel {c}: tensor {v}, CPU {}",
                    px[c]
                );
                if x != 3 {
                    assert_eq!(px[c], 7, "CPU ({x}, {y})");
                }
            }
        }
    }
}

/// Black regions beside a constant fill, then a gamma: every value finite, the paths agree.
fn fill_beside_black_then_gamma<B: Backend>(device: &B::Device) {
    let mut img = picture(48, 40);
    for (k, v) in img.data_mut().iter_mut().enumerate() {
        if (k / 3) % 48 < 24 {
            *v = 0;
        }
    }
    let images = vec![img; 4];
    let p = Pipeline::parse(
        "rotate(limit=30, border={\"constant\": 128}) gamma(range=[0.5, 0.8])",
        3,
    )
    .unwrap();
    let b = tensor_floats::<B>(&p, &images, device);
    assert!(b.iter().all(|v| v.is_finite()), "a NaN or an infinity");
    let a = cpu_floats(&p, &images);
    let scaled = |v: &[f32]| v.iter().map(|x| x * 255.0).collect::<Vec<_>>();
    let (mean, max, _) = diff_stats(&scaled(&a), &scaled(&b));
    assert!(mean < 0.5 && max < 8.0, "mean {mean}, max {max}");
}

#[test]
fn a_fill_beside_black_pixels_stays_finite_through_a_gamma_on_ndarray() {
    fill_beside_black_then_gamma::<TestBackend>(&Default::default());
}

#[test]
fn a_fill_beside_black_pixels_stays_finite_through_a_gamma_on_wgpu() {
    if let Some(device) = wgpu_device_or_skip() {
        fill_beside_black_then_gamma::<WgpuBackend>(&device);
    }
}
