//! MixUp and CutMix: images and labels mixed by the drawn weight; the draw depends only on
//! (seed, epoch, batch).

use burn::tensor::{Tensor, TensorData};
use rensa_augment::{BatchMix, CutMix, MixUp};
use rensa_testkit::TestBackend as B;

fn batch() -> (Tensor<B, 4>, Tensor<B, 2>) {
    let dev = Default::default();
    // image i is the constant i + 1; label i is one-hot on class i
    let n = 4;
    let imgs: Vec<f32> = (0..n)
        .flat_map(|i| vec![(i + 1) as f32; 3 * 8 * 10])
        .collect();
    let labels: Vec<f32> = (0..n)
        .flat_map(|i| (0..n).map(move |k| if k == i { 1.0 } else { 0.0 }))
        .collect();
    (
        Tensor::from_data(TensorData::new(imgs, [n, 3, 8, 10]), &dev),
        Tensor::from_data(TensorData::new(labels, [n, n]), &dev),
    )
}

#[test]
fn mixup_mixes_images_and_labels_with_one_weight() {
    let (x, y) = batch();
    let m = MixUp::new(0.4, 3).unwrap();
    let (xm, ym, d) = m.apply(x, y, 1, 5).unwrap();
    assert_eq!(d, m.draw(4, 1, 5));
    assert_ne!(d, m.draw(4, 1, 6));
    let xs = xm.into_data().to_vec::<f32>().unwrap();
    let ys = ym.into_data().to_vec::<f32>().unwrap();
    let l = d.lambda as f32;
    for i in 0..4 {
        let j = d.partner[i];
        let want = l * (i + 1) as f32 + (1.0 - l) * (j + 1) as f32;
        assert!((xs[i * 240] - want).abs() < 1e-5);
        let row = &ys[i * 4..i * 4 + 4];
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        if i != j {
            assert!((row[i] - l).abs() < 1e-6 && (row[j] - (1.0 - l)).abs() < 1e-6);
        }
    }
    assert!(MixUp::new(0.0, 0).is_err() && CutMix::new(f64::NAN, 0).is_err());
}

#[test]
fn cutmix_pastes_a_box_and_weights_labels_by_its_area() {
    let (x, y) = batch();
    let c = CutMix::new(1.0, 11).unwrap();
    let (xm, ym, d) = c.apply(x, y, 0, 2).unwrap();
    let [bx, by, bw, bh] = d.rect.unwrap();
    assert!((d.lambda - (1.0 - (bw * bh) as f64 / 80.0)).abs() < 1e-12);
    let xs = xm.into_data().to_vec::<f32>().unwrap();
    let ys = ym.into_data().to_vec::<f32>().unwrap();
    for i in 0..4 {
        let j = d.partner[i];
        for yy in 0..8 {
            for xx in 0..10 {
                let inside = (bx..bx + bw).contains(&xx) && (by..by + bh).contains(&yy);
                let v = xs[i * 240 + 2 * 80 + yy * 10 + xx];
                assert_eq!(
                    v,
                    if inside {
                        (j + 1) as f32
                    } else {
                        (i + 1) as f32
                    }
                );
            }
        }
        if i != j {
            assert!((ys[i * 4 + i] - d.lambda as f32).abs() < 1e-6);
        }
    }
}

#[test]
fn images_and_labels_of_different_batches_are_an_error() {
    let (x, y) = batch();
    let three = y.clone().narrow(0, 0, 3);
    let err = MixUp::new(0.4, 3)
        .unwrap()
        .apply(x.clone(), three.clone(), 0, 0)
        .unwrap_err();
    assert!(err.to_string().contains("4 images and 3 labels"), "{err}");
    let err = CutMix::new(1.0, 3)
        .unwrap()
        .apply(x, three, 0, 0)
        .unwrap_err();
    assert!(
        err.to_string().contains("cutmix: 4 images and 3 labels"),
        "{err}"
    );
}

#[test]
fn a_draw_that_does_not_fit_the_batch_is_named() {
    use rensa_augment::MixDraw;
    let dims = [4, 3, 8, 10];
    let draw = |lambda, partner: Vec<usize>, rect| MixDraw {
        lambda,
        partner,
        rect,
    };
    assert!(
        draw(0.5, vec![1, 0, 3, 2], Some([2, 1, 8, 7]))
            .check(dims)
            .is_ok()
    );
    for (d, expected) in [
        (draw(1.5, vec![0, 1, 2, 3], None), "lambda 1.5"),
        (
            draw(0.5, vec![0, 1, 2], None),
            "3 partners for a batch of 4",
        ),
        (draw(0.5, vec![0, 1, 2, 9], None), "partner 9"),
        (
            draw(0.5, vec![0, 1, 2, 3], Some([5, 0, 6, 2])),
            "the box 6x2 at (5, 0) is not inside 10x8",
        ),
        (
            draw(0.5, vec![0, 1, 2, 3], Some([usize::MAX, 0, 2, 2])),
            "is not inside",
        ),
    ] {
        let err = d.check(dims).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
    // the mixers refuse it by name rather than index out of bounds
    let (x, _) = batch();
    let bad = draw(0.5, vec![0, 1, 2, 3], Some([5, 0, 6, 2]));
    let mix = std::panic::AssertUnwindSafe(|| CutMix::new(1.0, 0).unwrap().mix_images(x, &bad));
    let panic = std::panic::catch_unwind(mix).unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("not inside 10x8"), "{message}");
}
