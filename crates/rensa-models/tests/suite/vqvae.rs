//! The VQ-VAE and its code prior: the loss is reconstruction / σ² + the quantiser's terms; the
//! straight-through estimator hands the decoder's gradient to the encoder; the EMA update runs
//! after each training step and the codebook state survives a checkpoint; a small generated image
//! set is learnt (reconstructions beat the mean image, codes are used); the prior's likelihood
//! is normalised and it learns a grid distribution it is shown, and samples it; bad sizes are
//! refused.

use burn::module::{AutodiffModule, Module};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::{Int, Tensor, TensorData};
use rensa_data::idx::{ImageBatch, Labelled};
use rensa_models::vqvae::{CodeBatch, CodePriorConfig, VqVaeConfig};
use rensa_nn::latent::{CodeUsage, VectorQuantizerConfig};
use rensa_testkit::{TestBackend, Tolerance, assert_slices_close, to_f64_vec};

use super::TrainBackend;

fn small(ema: bool) -> VqVaeConfig {
    VqVaeConfig::new()
        .with_rows(8)
        .with_cols(8)
        .with_hidden(16)
        .with_data_variance(0.2)
        .with_quantizer(
            VectorQuantizerConfig::new(16, 4)
                .with_ema_decay(ema.then_some(0.9))
                .with_reseed_below(ema.then_some(0.05)),
        )
}

#[test]
fn the_loss_is_reconstruction_over_variance_plus_the_quantiser_terms() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let model = small(false).init::<TestBackend>(&device).unwrap();
    let set = Labelled::stripes(4, 8, 2);
    let refs: Vec<_> = set.items().into_iter().collect();
    let refs: Vec<_> = refs.iter().collect();
    let x = ImageBatch::of(&refs).grid::<TestBackend>(&device);
    let out = model.forward(x.clone());
    assert_eq!(out.reconstruction.dims(), [4, 1, 8, 8]);
    let mse = to_f64_vec((out.reconstruction.clone() - x).powi_scalar(2).mean())[0];
    assert_slices_close(
        &to_f64_vec(out.reconstruction_loss.clone()),
        &[mse / 0.2],
        Tolerance::F32,
        "reconstruction / σ²",
    );
    let q = &out.quantized;
    let expected = mse / 0.2
        + to_f64_vec(q.codebook_loss.clone())[0]
        + 0.25 * to_f64_vec(q.commitment_loss.clone())[0];
    assert_slices_close(&to_f64_vec(out.loss()), &[expected], Tolerance::F32, "loss");
    // a 2 x 2 grid of codes per image
    assert_eq!(
        model.codes_of(ImageBatch::of(&refs).grid(&device)).dims(),
        [4, 2, 2]
    );
    assert_eq!(q.indices.dims(), [16]);
}

#[test]
fn the_encoder_receives_the_decoders_gradient_straight_through() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    // seeded: with some draws a whole ReLU layer on the path is dead and no gradient flows
    <TrainBackend as burn::tensor::backend::Backend>::seed(&device, 1);
    let model = small(true).init::<TrainBackend>(&device).unwrap();
    let set = Labelled::stripes(4, 8, 2);
    let items = set.items();
    let refs: Vec<_> = items.iter().collect();
    let out = model.forward(ImageBatch::of(&refs).grid(&device));
    // the reconstruction alone: only the straight-through path reaches the encoder
    let grads = out.reconstruction_loss.backward();
    let g = model.encoder()[0]
        .weight
        .val()
        .grad(&grads)
        .expect("a gradient for the encoder");
    assert!(to_f64_vec(g).iter().any(|v| *v != 0.0));
    // with EMA the codebook is state, not a parameter the gradient updates
    assert!(model.quantizer.codebook.val().grad(&grads).is_none());
}

#[test]
fn it_learns_a_small_image_set_and_keeps_its_codebook_in_checkpoints() {
    let _rng = rensa_testkit::rng_lock();
    let set = Labelled::stripes(64, 8, 4);
    let items = set.items();
    for ema in [true, false] {
        let device = Default::default();
        <TrainBackend as burn::tensor::backend::Backend>::seed(&device, 2);
        let model = small(ema).init::<TrainBackend>(&device).unwrap();
        let before = to_f64_vec(model.quantizer.codebook.val());
        let config = rensa_train::FitConfig::for_epochs(40, 8)
            .with_learning_rate(3e-3)
            .with_seed(2);
        let (model, history) = super::train(
            model,
            config,
            burn::optim::AdamConfig::new(),
            &items,
            ImageBatch::of,
        );
        let (first, last) = (history.epochs[0].loss, history.last().unwrap().loss);
        assert!(last < 0.5 * first, "ema {ema}: loss {first} -> {last}");
        for part in ["reconstruction", "codebook", "commitment"] {
            assert!(history.last().unwrap().metrics.contains_key(part), "{part}");
        }
        let model = model.valid();
        assert_ne!(
            to_f64_vec(model.quantizer.codebook.val()),
            before,
            "the codebook moved"
        );
        let refs: Vec<_> = items.iter().collect();
        let x = ImageBatch::of(&refs).grid::<TestBackend>(&device);
        let out = model.forward(x.clone());
        let err = to_f64_vec((out.reconstruction - x.clone()).powi_scalar(2).mean())[0];
        let base = to_f64_vec((x.clone() - x.mean_dim(0)).powi_scalar(2).mean())[0];
        assert!(
            err < 0.5 * base,
            "ema {ema}: reconstruction MSE {err} vs {base}"
        );
        let mut usage = CodeUsage::new(16);
        usage.add(out.quantized.indices);
        assert!(
            usage.used() >= 2.0 / 16.0,
            "ema {ema}: {:?}",
            usage.counts()
        );
        // the codebook and its EMA statistics come back from a record
        let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
        let bytes = recorder.record(model.clone().into_record(), ()).unwrap();
        let loaded = small(ema)
            .init::<TestBackend>(&device)
            .unwrap()
            .load_record(recorder.load(bytes, &device).unwrap());
        assert_eq!(
            to_f64_vec(loaded.quantizer.codebook.val()),
            to_f64_vec(model.quantizer.codebook.val())
        );
        assert_eq!(
            to_f64_vec(loaded.quantizer.usage()),
            to_f64_vec(model.quantizer.usage())
        );
    }
}

#[test]
fn the_prior_is_normalised_learns_a_grid_distribution_and_samples_it() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    <TrainBackend as burn::tensor::backend::Backend>::seed(&device, 3);
    let prior = CodePriorConfig::new(5)
        .with_embedding(8)
        .with_hidden(32)
        .init::<TrainBackend>(&device)
        .unwrap();
    // each position's probabilities sum to 1
    let codes = Tensor::<TrainBackend, 2, Int>::from_data(
        TensorData::new(vec![0i64, 1, 2, 3, 4, 0], [2, 3]),
        &device,
    );
    let sums = to_f64_vec(prior.log_probs(codes).exp().sum_dim(2));
    assert_slices_close(&sums, &[1.0; 6], Tolerance::F32, "Σ p");
    // two grids, each half of the time: c, c + 1, c + 2 for c in {0, 2}
    let grids: Vec<Vec<u32>> = (0..64)
        .map(|i| {
            let c = 2 * (i % 2);
            vec![c, c + 1, c + 2]
        })
        .collect();
    let config = rensa_train::FitConfig::for_epochs(60, 16)
        .with_learning_rate(1e-2)
        .with_seed(3);
    let (prior, _) = super::train(
        prior,
        config,
        burn::optim::AdamConfig::new(),
        &grids,
        CodeBatch::of,
    );
    let prior = prior.valid();
    let test = Tensor::<TestBackend, 2, Int>::from_data(
        TensorData::new(vec![0i64, 1, 2, 2, 3, 4], [2, 3]),
        &device,
    );
    // the best possible: 1 bit for the first code, the rest determined
    let nll = to_f64_vec(prior.neg_log_likelihood(test));
    for n in nll {
        assert!(
            (n - std::f64::consts::LN_2).abs() < 0.1,
            "−log p = {n} nats"
        );
    }
    let samples: Vec<i64> = prior
        .sample(20, 3, 1.0)
        .into_data()
        .convert::<i64>()
        .to_vec()
        .unwrap();
    for s in samples.chunks(3) {
        assert!(s == [0, 1, 2] || s == [2, 3, 4], "a sample {s:?}");
    }
}

#[test]
fn bad_sizes_are_refused() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let e = small(true)
        .with_rows(10)
        .init::<TestBackend>(&device)
        .unwrap_err();
    assert!(e.to_string().contains("multiples of 4"), "{e}");
    let e = small(true)
        .with_data_variance(0.0)
        .init::<TestBackend>(&device)
        .unwrap_err();
    assert!(e.to_string().contains("`data_variance`"), "{e}");
    let e = CodePriorConfig::new(0)
        .init::<TestBackend>(&device)
        .unwrap_err();
    assert!(e.to_string().contains("`codes`"), "{e}");
}

#[test]
#[should_panic(expected = "grey images of 8 x 8 pixels")]
fn images_of_another_size_are_refused() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let model = small(true).init::<TestBackend>(&device).unwrap();
    model.encode(Tensor::zeros([1, 1, 12, 12], &device));
}
