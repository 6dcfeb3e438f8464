//! The course's configuration trains to a useful model: a bar well below what an untrained
//! model scores (val_loss ≈ 0.5), and Keras's own result in the course's setting (val_loss
//! 0.00196, autoregressive MSE mean 0.0128) within a factor of a few.

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::optim::AdamConfig;
use rensa_nn::recurrent::RnnCell;
use rensa_train::{FitConfig, fit};
use seq2seq::{PREDICTION_STARTS, STEPS, Seq2Seq, mse, series, windows};

type B = Autodiff<NdArray>;

#[test]
fn the_course_setting_learns_sin_to_cos() {
    let device = Default::default();
    <B as burn::tensor::backend::Backend>::seed(&device, 0);
    let model = Seq2Seq::<B, RnnCell<B>>::new(10, &device).unwrap();
    let config = FitConfig::new()
        .with_epochs(80)
        .with_batch_size(16)
        .with_validation_split(0.2)
        .with_learning_rate(1e-3);
    let items = windows();
    let mut optimizer = AdamConfig::new().with_epsilon(1e-7).init();
    let (model, history) = fit(&config, model, &mut optimizer, &items, &device, |_| {}).unwrap();
    let first = &history.epochs[0];
    let last = history.last().unwrap();
    assert!(
        last.val_loss.unwrap() < 0.01,
        "val_loss {:?}",
        last.val_loss
    );
    assert!(
        last.loss < first.loss / 20.0,
        "loss went from {} to {}",
        first.loss,
        last.loss
    );
    let model = model.valid();
    let (_, sin, cos) = series();
    let mean = PREDICTION_STARTS
        .iter()
        .map(|&i| {
            mse(
                &model.predict(&sin[i..i + STEPS], STEPS, &device),
                &cos[i..i + STEPS],
            )
        })
        .sum::<f64>()
        / 4.0;
    assert!(mean < 0.03, "autoregressive MSE mean {mean}");
}
