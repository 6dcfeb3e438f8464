//! rensa's CPU kernels against OpenCV on the same image (assets/golden/augment_cv2.py and the
//! JSON it wrote): resize, Gaussian blur, affine warps with constant and reflected borders,
//! flip, quarter turn, padding and grayscale.

use rensa_augment::{Image, Op, Pipeline, Plan, SampleKey, Size};
use serde_json::Value;

fn image(v: &Value) -> Image {
    let (w, h) = (
        v["width"].as_u64().unwrap() as usize,
        v["height"].as_u64().unwrap() as usize,
    );
    let data = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u8)
        .collect();
    Image::new(w, h, 3, data).unwrap()
}

#[test]
fn kernels_match_opencv() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../assets/golden/augment_cv2.json"
    );
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let input = image(&golden["input"]);
    for case in golden["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let expected = image(&case["expected"]);
        let got = if let Some(op) = case.get("op") {
            let op: Op = serde_json::from_value(op.clone()).unwrap();
            let plan = Plan {
                key: SampleKey::new(0, 0, 0),
                input: input.size(),
                output: op.output_size(input.size()),
                ops: vec![op],
            };
            plan.apply(&input).unwrap()
        } else {
            let text = serde_json::json!({ "steps": [case["pipeline"].clone()] }).to_string();
            Pipeline::from_json(&text, name)
                .unwrap()
                .apply(&input, 0, 0)
                .unwrap()
        };
        assert_eq!(
            got.size(),
            Size::new(expected.width(), expected.height()),
            "{name}: size"
        );
        let diffs: Vec<i32> = got
            .data()
            .iter()
            .zip(expected.data())
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .collect();
        let max = diffs.iter().copied().max().unwrap();
        let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
        eprintln!("{name}: max {max}, mean {mean:.3}");
        // OpenCV interpolates with 5-bit (warps) or 11-bit (resize) fixed-point weights and
        // blurs with 8-bit fixed-point kernels; rensa with 8-bit weights or floats.
        assert!(
            max <= 1 && mean < 0.2,
            "{name}: differs from OpenCV (max {max}, mean {mean})"
        );
    }
}
