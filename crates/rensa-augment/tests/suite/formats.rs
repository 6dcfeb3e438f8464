//! The file forms stay compatible: a pipeline with every operation (`formats/every_operation.*`)
//! as the augment example writes it (`pipeline.json`), the plans it draws (`plans.json`, what
//! `--replay` reads), the same pipeline as TOML, and checksums of the images the plans produce
//! on the CPU path. The files were written by an earlier version of the crate with
//! `RENSA_BLESS=1 cargo test -p rensa-augment --test formats`; every later version must read
//! them, write the same text and draw the same parameters and pixels.

use crate::common;

use rensa_augment::{Pipeline, Plan};
use std::path::PathBuf;

/// Every operation name, with non-default parameters where the form has any.
const EVERY_OPERATION: &str = concat!(
    "horizontal_flip vertical_flip(p=0.3) rot90(p=0.7) ",
    "affine(rotate=[-20,20], translate_x=[-0.1,0.1], scale=[0.9,1.1], shear_y=[-5,5], border=\"reflect\", interp=\"nearest\") ",
    "rotate(limit=30) shift(limit=0.1, border={\"constant\":7}) zoom(range=[0.8,1.2]) ",
    "shear(limit=10, p=0.5, border=\"edge\") ",
    "pad(left=2, top=3, right=4, bottom=1, border=\"edge\") ",
    "random_crop(width=36, height=28) center_crop(width=34, height=26) ",
    "random_resized_crop(width=30, height=24) resize(width=32, height=24, interp=\"nearest\") ",
    "brightness contrast(range=[0.5,1.5]) saturation hue color_jitter brightness_contrast ",
    "hue_saturation_value grayscale(p=0.5) gamma gaussian_blur(p=0.5) ",
    "gaussian_noise(std=[0.01,0.05], per_channel=false) erasing(holes=[1,3], fill=128) ",
    "compose(steps=[{\"op\":\"horizontal_flip\"}]) ",
    "random_apply(p=0.5, steps=[{\"op\":\"brightness\"},{\"op\":\"contrast\"}]) ",
    "one_of(steps=[{\"op\":\"grayscale\",\"p\":1},{\"op\":\"hue\"}], weights=[1,2]) ",
    "normalize",
);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/formats")
        .join(name)
}

/// Compares `text` with the fixture `name`, or writes it there under `RENSA_BLESS=1`.
fn same_as_fixture(name: &str, text: &str) {
    let path = fixture(name);
    if std::env::var_os("RENSA_BLESS").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        text == want,
        "{name} changed:\n--- now\n{text}\n--- fixture\n{want}"
    );
}

fn plans(p: &Pipeline) -> Vec<Plan> {
    let img = common::picture(40, 30);
    (0..8).map(|i| p.plan(img.size(), 3, i).unwrap()).collect()
}

#[test]
fn pipeline_json_is_written_and_read_as_before() {
    let p = Pipeline::parse(EVERY_OPERATION, 11).unwrap();
    same_as_fixture("every_operation.pipeline.json", &p.to_json());
    same_as_fixture(
        "every_operation.pipeline.toml",
        &toml::to_string(&p).unwrap(),
    );
    let loaded = Pipeline::load(fixture("every_operation.pipeline.json")).unwrap();
    assert_eq!(loaded, p);
}

#[test]
fn toml_pipeline_loads_as_the_json_one() {
    let json = Pipeline::load(fixture("every_operation.pipeline.json")).unwrap();
    let toml = Pipeline::load(fixture("every_operation.pipeline.toml")).unwrap();
    assert_eq!(toml, json);
}

#[test]
fn plans_json_is_written_and_replayed_as_before() {
    let p = Pipeline::parse(EVERY_OPERATION, 11).unwrap();
    let drawn = plans(&p);
    let text = serde_json::to_string_pretty(&drawn).unwrap();
    same_as_fixture("every_operation.plans.json", &text);
    let read: Vec<Plan> = serde_json::from_str(
        &std::fs::read_to_string(fixture("every_operation.plans.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(read, drawn);
}

#[test]
fn the_plans_give_the_same_pixels_as_before() {
    let p = Pipeline::parse(EVERY_OPERATION, 11).unwrap();
    let img = common::picture(40, 30);
    // FNV-1a over the float bits of each sample's CHW output
    let sums: Vec<String> = plans(&p)
        .iter()
        .map(|plan| {
            let out = plan.apply_f32(&img).unwrap();
            let h = out.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
                (h ^ v.to_bits() as u64).wrapping_mul(0x0100_0000_01b3)
            });
            format!("{h:016x}")
        })
        .collect();
    same_as_fixture("every_operation.pixels.txt", &(sums.join("\n") + "\n"));
}
