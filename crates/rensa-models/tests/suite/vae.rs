//! The VAE: its −ELBO against the formula written out for one image, stable at saturated
//! logits, the same on wgpu as on ndarray with the same weights, and learning on a small
//! generated image set (the loss falls, reconstructions beat the mean image); bad sizes refused.

use burn::module::Module;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::{Tensor, TensorData};
use rensa_data::idx::{ImageBatch, Labelled};
use rensa_models::vae::{Architecture, VaeConfig};
use rensa_testkit::{TestBackend, Tolerance, WgpuBackend, assert_slices_close, to_f64_vec};

/// 64 images of 8 x 8 in 4 classes of vertical stripes.
fn stripes() -> Labelled {
    Labelled::stripes(64, 8, 4)
}

#[test]
fn the_negative_elbo_is_reconstruction_plus_kl() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let config = VaeConfig::new()
        .with_rows(2)
        .with_cols(2)
        .with_latent(3)
        .with_hidden(5);
    let vae = config.init::<TestBackend>(&device).unwrap();
    let pixels = [0.0f64, 1.0, 0.25, 1.0];
    let x = Tensor::<TestBackend, 2>::from_data(
        TensorData::new(pixels.iter().map(|&v| v as f32).collect(), [1, 4]),
        &device,
    );
    let eps = [0.3f64, -1.2, 0.7];
    let noise = Tensor::<TestBackend, 2>::from_data(
        TensorData::new(eps.iter().map(|&v| v as f32).collect(), [1, 3]),
        &device,
    );
    let elbo = vae.elbo_with_noise(x.clone(), noise);

    // by hand: z = μ + exp(½ log σ²) ε, the pixels' BCE at the decoder's means for z, and
    // ½ Σ (μ² + σ² − 1 − log σ²)
    let q = vae.encode(x);
    let (mu, lv) = (to_f64_vec(q.mean), to_f64_vec(q.log_var));
    let z: Vec<f32> = (0..3)
        .map(|j| (mu[j] + (0.5 * lv[j]).exp() * eps[j]) as f32)
        .collect();
    let p = to_f64_vec(vae.decode(Tensor::from_data(TensorData::new(z, [1, 3]), &device)));
    let bce: f64 = pixels
        .iter()
        .zip(&p)
        .map(|(x, p)| -(x * p.ln() + (1.0 - x) * (1.0 - p).ln()))
        .sum();
    let kl: f64 = (0..3)
        .map(|j| 0.5 * (mu[j] * mu[j] + lv[j].exp() - 1.0 - lv[j]))
        .sum();
    let tol = Tolerance::new(1e-4, 1e-4);
    assert_slices_close(&to_f64_vec(elbo.reconstruction.clone()), &[bce], tol, "BCE");
    assert_slices_close(&to_f64_vec(elbo.kl.clone()), &[kl], tol, "KL");
    assert_slices_close(&to_f64_vec(elbo.negative()), &[bce + kl], tol, "−ELBO");
}

#[test]
fn saturated_logits_stay_finite() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    // Seeded: with random weights all three ReLU units of the decoder are dead for this code one
    // time in eight, and the logits stay small.
    <TestBackend as burn::tensor::backend::Backend>::seed(&device, 1);
    let vae = VaeConfig::new()
        .with_rows(2)
        .with_cols(2)
        .with_latent(2)
        .with_hidden(3);
    let vae = vae.init::<TestBackend>(&device).unwrap();
    // a huge code drives the logits far into saturation
    let z =
        Tensor::<TestBackend, 2>::from_data(TensorData::new(vec![1e4f32, -1e4], [1, 2]), &device);
    let logits = vae.decode_logits(z);
    let l = to_f64_vec(logits.clone());
    assert!(l.iter().any(|l| l.abs() > 100.0), "{l:?}");
    // the reconstruction term at those logits, against Σ max(l, 0) − x l (+ log1p(e^−|l|)),
    // for pixels of 1, 0 and between
    let pixels = [1.0f64, 0.0, 0.5, 1.0];
    let x = Tensor::<TestBackend, 2>::from_data(
        TensorData::new(pixels.iter().map(|&v| v as f32).collect(), [1, 4]),
        &device,
    );
    let want: f64 = l
        .iter()
        .zip(&pixels)
        .map(|(l, x)| l.max(0.0) + (-l.abs()).exp().ln_1p() - x * l)
        .sum();
    let got = to_f64_vec(vae.reconstruction_nll(logits, x))[0];
    assert!(got.is_finite(), "{got}");
    assert!(
        (got - want).abs() <= 1e-4 * want.abs().max(1.0),
        "{got} vs {want}"
    );
}

#[test]
fn the_same_weights_give_the_same_elbo_on_wgpu() {
    let _rng = rensa_testkit::rng_lock();
    let Some(gpu) = rensa_testkit::wgpu_device_or_skip() else {
        return;
    };
    let cpu = Default::default();
    let set = stripes();
    let items = set.items();
    let refs: Vec<_> = items.iter().take(8).collect();
    let batch = ImageBatch::of(&refs);
    for architecture in [Architecture::Mlp, Architecture::Conv] {
        let config = VaeConfig::new()
            .with_rows(8)
            .with_cols(8)
            .with_latent(4)
            .with_hidden(16)
            .with_architecture(architecture);
        let a = config.init::<TestBackend>(&cpu).unwrap();
        // the weights through burn's recorder, as a checkpoint moves them between backends
        let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
        let bytes = recorder.record(a.clone().into_record(), ()).unwrap();
        let b = config
            .init::<WgpuBackend>(&gpu)
            .unwrap()
            .load_record(recorder.load(bytes, &gpu).unwrap());
        // the posterior means, and the decoder at them: no noise involved
        let (qa, qb) = (a.encode(batch.flat(&cpu)), b.encode(batch.flat(&gpu)));
        let tol = Tolerance::new(1e-4, 1e-4);
        assert_slices_close(
            &to_f64_vec(qb.mean.clone()),
            &to_f64_vec(qa.mean.clone()),
            tol,
            "μ",
        );
        assert_slices_close(
            &to_f64_vec(qb.log_var),
            &to_f64_vec(qa.log_var),
            tol,
            "log σ²",
        );
        assert_slices_close(
            &to_f64_vec(b.decode(qb.mean)),
            &to_f64_vec(a.decode(qa.mean)),
            tol,
            "decoded",
        );
    }
}

#[test]
fn it_learns_a_small_image_set() {
    let _rng = rensa_testkit::rng_lock();
    let set = stripes();
    let items = set.items();
    for architecture in [Architecture::Mlp, Architecture::Conv] {
        let device = Default::default();
        <super::TrainBackend as burn::tensor::backend::Backend>::seed(&device, 1);
        let model = VaeConfig::new()
            .with_rows(8)
            .with_cols(8)
            .with_latent(4)
            .with_hidden(32)
            .with_architecture(architecture)
            .init::<super::TrainBackend>(&device)
            .unwrap();
        let config = rensa_train::FitConfig::for_epochs(40, 16)
            .with_learning_rate(3e-3)
            .with_seed(1);
        let (model, history) = super::train(
            model,
            config,
            burn::optim::AdamConfig::new(),
            &items,
            ImageBatch::of,
        );
        let first = history.epochs[0].loss;
        let last = history.last().unwrap().loss;
        assert!(
            last < 0.6 * first,
            "{architecture:?}: -ELBO {first} -> {last}"
        );
        assert!(history.last().unwrap().metrics.contains_key("kl"));
        // reconstructions closer than the mean image
        use burn::module::AutodiffModule;
        let model = model.valid();
        let refs: Vec<_> = items.iter().collect();
        let x = ImageBatch::of(&refs).flat::<TestBackend>(&device);
        let err = (model.reconstruct(x.clone()) - x.clone())
            .powi_scalar(2)
            .mean();
        let mean_image = x.clone().mean_dim(0);
        let base = (x - mean_image).powi_scalar(2).mean();
        let (err, base) = (to_f64_vec(err)[0], to_f64_vec(base)[0]);
        assert!(
            err < 0.5 * base,
            "{architecture:?}: reconstruction MSE {err} vs {base}"
        );
    }
}

#[test]
fn bad_sizes_are_refused() {
    let _rng = rensa_testkit::rng_lock(); // `init` would draw if the sizes passed
    let device = Default::default();
    let conv = VaeConfig::new()
        .with_rows(10)
        .with_architecture(Architecture::Conv);
    let e = conv.init::<TestBackend>(&device).unwrap_err();
    assert!(e.to_string().contains("multiples of 4"), "{e}");
    let e = VaeConfig::new()
        .with_latent(0)
        .init::<TestBackend>(&device)
        .unwrap_err();
    assert!(e.to_string().contains("`latent`"), "{e}");
}
