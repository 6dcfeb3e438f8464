//! The latent layers against hand computations: the Gaussian's KL and log-density in closed form
//! written out element by element, the quantiser's nearest codes, losses, straight-through
//! gradient, EMA update (with Laplace smoothing) and dead-code re-seeding, codebook usage and
//! perplexity, the state kept in records, and bad configurations.

use burn::backend::{Autodiff, NdArray};
use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};
use rensa_nn::latent::{CodeUsage, DiagonalGaussian, VectorQuantizerConfig, active_units};
use rensa_testkit::{Tolerance, assert_slices_close, to_f64_vec};

type B = NdArray<f32>;
type AD = Autodiff<B>;

fn t2<Bk: burn::tensor::backend::Backend>(v: &[f32], shape: [usize; 2]) -> Tensor<Bk, 2> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), &Default::default())
}

const TOL: Tolerance = Tolerance::new(1e-5, 1e-5);

#[test]
fn gaussian_kl_and_density_match_their_formulas() {
    let _rng = rensa_testkit::rng_lock(); // `sample` draws
    let (mu, lv) = ([0.5f32, -1.0, 0.0, 2.0], [0.0f32, -0.5, 1.0, 0.3]);
    let (pm, plv) = ([0.1f32, 0.2, -0.3, 1.0], [0.5f32, -1.0, 0.0, 0.2]);
    let q = DiagonalGaussian::new(t2::<B>(&mu, [2, 2]), t2(&lv, [2, 2]));
    let p = DiagonalGaussian::new(t2::<B>(&pm, [2, 2]), t2(&plv, [2, 2]));
    let (mut kl_std, mut kl_p) = (vec![0.0; 2], vec![0.0; 2]);
    for i in 0..4 {
        let (m, l, a, b) = (mu[i] as f64, lv[i] as f64, pm[i] as f64, plv[i] as f64);
        kl_std[i / 2] += 0.5 * (m * m + l.exp() - 1.0 - l);
        kl_p[i / 2] += 0.5 * (b - l + (l.exp() + (m - a) * (m - a)) / b.exp() - 1.0);
    }
    assert_slices_close(&to_f64_vec(q.kl_standard()), &kl_std, TOL, "KL to N(0, I)");
    assert_slices_close(&to_f64_vec(q.kl(&p)), &kl_p, TOL, "KL to a learned prior");
    let standard = DiagonalGaussian::<B>::standard(2, 2, &Default::default());
    assert_slices_close(
        &to_f64_vec(q.kl(&standard)),
        &kl_std,
        TOL,
        "KL to the standard normal both ways",
    );
    assert_slices_close(&to_f64_vec(q.kl(&q)), &[0.0, 0.0], TOL, "KL(q, q)");

    // reparameterised sample with given noise, and the density at it
    let noise = [0.3f32, -0.7, 1.1, 0.0];
    let z = q.reparameterise(t2(&noise, [2, 2]));
    let want: Vec<f64> = (0..4)
        .map(|i| mu[i] as f64 + (0.5 * lv[i] as f64).exp() * noise[i] as f64)
        .collect();
    assert_slices_close(&to_f64_vec(z.clone()), &want, TOL, "μ + σ ε");
    let mut log_p = vec![0.0; 2];
    for i in 0..4 {
        let (x, m, l) = (want[i], mu[i] as f64, lv[i] as f64);
        log_p[i / 2] += -0.5 * ((x - m).powi(2) / l.exp() + l + (2.0 * std::f64::consts::PI).ln());
    }
    assert_slices_close(&to_f64_vec(q.log_prob(z)), &log_p, TOL, "log N(z; μ, σ²)");
    assert_eq!(q.sample().dims(), [2, 2]);
}

#[test]
fn the_kl_stays_finite_at_extreme_log_variances() {
    // one dimension per row: a learned prior's log σ² of −110 is a σ² of 0 in f32, and the
    // first row's KL is ½(−1 + e − 1) all the same; the second's 1/σ_p² = e^80 is large but
    // finite
    let q = DiagonalGaussian::new(t2::<B>(&[0.0, 0.5], [2, 1]), t2(&[-109.0, 0.0], [2, 1]));
    let p = DiagonalGaussian::new(t2::<B>(&[0.0, 0.0], [2, 1]), t2(&[-110.0, -80.0], [2, 1]));
    let (m, l, a, b) = (
        [0.0f64, 0.5],
        [-109.0f64, 0.0],
        [0.0f64, 0.0],
        [-110.0f64, -80.0],
    );
    let want: Vec<f64> = (0..2)
        .map(|i| {
            0.5 * (b[i] - l[i] + (l[i] - b[i]).exp() + (m[i] - a[i]).powi(2) * (-b[i]).exp() - 1.0)
        })
        .collect();
    let got = to_f64_vec(q.kl(&p));
    for (g, w) in got.iter().zip(&want) {
        assert!(
            g.is_finite() && ((g - w) / w).abs() < 1e-4,
            "KL {got:?}, by hand {want:?}"
        );
    }
}

#[test]
fn active_units_count_the_dimensions_whose_mean_varies() {
    // dimension 0 varies, 1 is constant, 2 varies a little (variance 1/400 with Bessel's
    // correction, < 0.01)
    let means = t2::<B>(&[1.0, 5.0, 0.0, -1.0, 5.0, 0.1, 2.0, 5.0, 0.05], [3, 3]);
    assert_eq!(active_units(means, 0.01), 1);
}

#[test]
#[should_panic(expected = "at least two inputs")]
fn active_units_of_one_input_is_not_zero_units() {
    active_units(t2::<B>(&[1.0, 5.0], [1, 2]), 0.01);
}

#[test]
#[should_panic(expected = "at least one row to quantise")]
fn quantising_no_row_is_refused_by_name() {
    let (codes, _) = three_codes();
    let vq = VectorQuantizerConfig::new(3, 2)
        .with_codebook(t2::<B>(&codes, [3, 2]))
        .expect("a valid quantiser");
    vq.forward(Tensor::<B, 2>::zeros([0, 2], &Default::default()));
}

/// Codes at (0, 0), (1, 0) and (0, 5); the inputs pick codes 0, 1, 1, 0.
fn three_codes() -> (Vec<f32>, Vec<f32>) {
    (
        vec![0.0, 0.0, 1.0, 0.0, 0.0, 5.0],
        vec![0.1, -0.2, 0.9, 0.3, 1.4, -0.1, -0.3, 0.4],
    )
}

#[test]
fn the_quantiser_picks_the_nearest_code_and_passes_the_gradient_straight_through() {
    let (codes, x) = three_codes();
    let config = VectorQuantizerConfig::new(3, 2).with_commitment(0.25);
    let vq = config
        .with_codebook(t2::<AD>(&codes, [3, 2]))
        .expect("a valid quantiser");
    let input = t2::<AD>(&x, [4, 2]).require_grad();
    let q = vq.forward(input.clone());
    let indices: Vec<i64> = q.indices.clone().into_data().to_vec().unwrap();
    assert_eq!(indices, [0, 1, 1, 0]);
    let chosen = [0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0];
    assert_slices_close(&to_f64_vec(q.quantized.clone()), &chosen, TOL, "z_q = e_k");
    // both losses: mean over the 8 elements of (z_e − e_k)²
    let mse = x
        .iter()
        .zip(chosen)
        .map(|(&a, b)| (a as f64 - b).powi(2))
        .sum::<f64>()
        / 8.0;
    assert_slices_close(
        &to_f64_vec(q.codebook_loss.clone()),
        &[mse],
        TOL,
        "codebook loss",
    );
    assert_slices_close(
        &to_f64_vec(q.commitment_loss.clone()),
        &[mse],
        TOL,
        "commitment",
    );
    assert_slices_close(&to_f64_vec(q.loss.clone()), &[1.25 * mse], TOL, "loss");

    // d/dz_e of sum(r ⊙ z_q) is r (straight through); of β·commitment, 2β(z_e − e_k)/8;
    // the codebook loss gives the codes 2(e_k − z_e)/8 summed over their rows
    let r = [1.0f32, 2.0, -1.0, 0.5, 3.0, -2.0, 0.0, 1.0];
    let objective = (q.quantized * t2::<AD>(&r, [4, 2])).sum() + q.loss;
    let grads = objective.backward();
    let dx = to_f64_vec(input.grad(&grads).unwrap());
    let want: Vec<f64> = (0..8)
        .map(|i| r[i] as f64 + 2.0 * 0.25 * (x[i] as f64 - chosen[i]) / 8.0)
        .collect();
    assert_slices_close(&dx, &want, TOL, "straight-through gradient");
    let de = to_f64_vec(vq.codebook.val().grad(&grads).unwrap());
    let mut want = vec![0.0; 6];
    for (row, k) in indices.iter().enumerate() {
        for d in 0..2 {
            want[*k as usize * 2 + d] +=
                2.0 * (codes[*k as usize * 2 + d] as f64 - x[row * 2 + d] as f64) / 8.0;
        }
    }
    assert_slices_close(&de, &want, TOL, "codebook gradient");
}

#[test]
fn ema_updates_match_a_hand_computation() {
    let (codes, x) = three_codes();
    let (gamma, eps) = (0.9, 0.1);
    let config = VectorQuantizerConfig::new(3, 2)
        .with_ema_decay(Some(gamma))
        .with_epsilon(eps);
    let vq = config
        .with_codebook(t2::<B>(&codes, [3, 2]))
        .expect("a valid quantiser");
    let q = vq.forward(t2(&x, [4, 2]));
    // the commitment term only
    let mse = to_f64_vec(q.commitment_loss.clone())[0];
    assert_slices_close(&to_f64_vec(q.loss.clone()), &[0.25 * mse], TOL, "EMA loss");
    let vq = vq.update(&q.stats);

    // by hand: N starts at 1 per code and m at the codes themselves
    let counts = [2.0, 2.0, 0.0];
    let sums = [[0.1 - 0.3, -0.2 + 0.4], [0.9 + 1.4, 0.3 - 0.1], [0.0, 0.0]];
    let mut n = [0.0; 3];
    let mut m = [[0.0; 2]; 3];
    for k in 0..3 {
        n[k] = gamma * 1.0 + (1.0 - gamma) * counts[k];
        for d in 0..2 {
            m[k][d] = gamma * codes[k * 2 + d] as f64 + (1.0 - gamma) * sums[k][d];
        }
    }
    let total: f64 = n.iter().sum();
    let mut want = Vec::new();
    for k in 0..3 {
        let smoothed = (n[k] + eps) / (total + 3.0 * eps) * total;
        want.extend(m[k].iter().map(|v| v / smoothed));
    }
    assert_slices_close(
        &to_f64_vec(vq.codebook.val()),
        &want,
        TOL,
        "codebook after one EMA step",
    );
    // usage: 0.99 · 1 + 0.01 · n_k
    assert_slices_close(
        &to_f64_vec(vq.usage()),
        &[0.99 + 0.02, 0.99 + 0.02, 0.99],
        TOL,
        "running usage",
    );
}

#[test]
fn unused_codes_are_reseeded_from_the_batch() {
    let _rng = rensa_testkit::rng_lock(); // re-seeding draws rows
    let (codes, x) = three_codes();
    let config = VectorQuantizerConfig::new(3, 2)
        .with_ema_decay(Some(0.9))
        .with_reseed_below(Some(0.5))
        .with_usage_decay(0.5);
    let mut vq = config
        .with_codebook(t2::<B>(&codes, [3, 2]))
        .expect("a valid quantiser");
    let inputs = t2::<B>(&x, [4, 2]);
    // code 2 is never picked: usage 1 → 0.5 → 0.25, re-seeded at the second update
    for step in 0..2 {
        let q = vq.forward(inputs.clone());
        vq = vq.update(&q.stats);
        let code2 = to_f64_vec(vq.codebook.val())[4..].to_vec();
        let rows: Vec<Vec<f64>> = x
            .chunks(2)
            .map(|r| r.iter().map(|&v| v as f64).collect())
            .collect();
        if step == 0 {
            // not re-seeded while used enough (the smoothing moves it a little)
            assert_slices_close(&code2, &[0.0, 5.0], Tolerance::new(1e-4, 0.0), "code 2");
        } else {
            assert!(
                rows.iter()
                    .any(|r| r.iter().zip(&code2).all(|(a, b)| (a - b).abs() < 1e-6)),
                "code 2 re-seeded to a row of the batch, got {code2:?}"
            );
            assert_eq!(to_f64_vec(vq.usage())[2], 1.0);
        }
    }
}

#[test]
fn the_state_survives_a_record_round_trip() {
    let (codes, x) = three_codes();
    let config = VectorQuantizerConfig::new(3, 2).with_ema_decay(Some(0.9));
    let vq = config
        .with_codebook(t2::<B>(&codes, [3, 2]))
        .expect("a valid quantiser");
    let q = vq.forward(t2(&x, [4, 2]));
    let trained = vq.update(&q.stats);
    let fresh = config
        .with_codebook(t2::<B>(&[0.0; 6], [3, 2]))
        .expect("a valid quantiser");
    let loaded = fresh.load_record(trained.clone().into_record());
    assert_eq!(
        to_f64_vec(loaded.codebook.val()),
        to_f64_vec(trained.codebook.val())
    );
    assert_eq!(to_f64_vec(loaded.usage()), to_f64_vec(trained.usage()));
    // and the next update continues from the same moving averages
    let a = to_f64_vec(trained.update(&q.stats).codebook.val());
    let b = to_f64_vec(loaded.update(&q.stats).codebook.val());
    assert_eq!(a, b);
}

#[test]
fn grids_quantise_channels_first() {
    let (codes, _) = three_codes();
    let vq = VectorQuantizerConfig::new(3, 2)
        .with_codebook(t2::<B>(&codes, [3, 2]))
        .expect("a valid quantiser");
    // [1, 2, 1, 2]: two positions, (0.9, 0.2) and (0.1, 4.0)
    let grid = Tensor::<B, 4>::from_data(
        TensorData::new(vec![0.9f32, 0.1, 0.2, 4.0], [1, 2, 1, 2]),
        &Default::default(),
    );
    let (quantized, q) = vq.forward_grid(grid);
    assert_eq!(to_f64_vec(quantized), [1.0, 0.0, 0.0, 5.0]);
    let indices: Vec<i64> = q.indices.into_data().to_vec().unwrap();
    assert_eq!(indices, [1, 2]);
    let codes = Tensor::<B, 3, Int>::from_data(
        TensorData::new(vec![1i64, 2], [1, 1, 2]),
        &Default::default(),
    );
    assert_eq!(to_f64_vec(vq.lookup_grid(codes)), [1.0, 0.0, 0.0, 5.0]);
}

#[test]
fn usage_and_perplexity_count_the_codes() {
    let mut usage = CodeUsage::new(4);
    assert_eq!(usage.perplexity(), 0.0);
    usage.add(Tensor::<B, 1, Int>::from_data(
        TensorData::new(vec![0i64, 1, 0, 1], [4]),
        &Default::default(),
    ));
    assert_eq!(usage.used(), 0.5);
    assert!((usage.perplexity() - 2.0).abs() < 1e-12);
    usage.add(Tensor::<B, 1, Int>::from_data(
        TensorData::new(vec![2i64, 3, 2, 3], [4]),
        &Default::default(),
    ));
    assert_eq!(usage.counts(), [2, 2, 2, 2]);
    assert!((usage.perplexity() - 4.0).abs() < 1e-12);
}

#[test]
fn bad_configurations_are_refused() {
    let _rng = rensa_testkit::rng_lock(); // `init` draws the codes
    for (config, field) in [
        (VectorQuantizerConfig::new(0, 2), "codes"),
        (VectorQuantizerConfig::new(1, 2), "codes"),
        (VectorQuantizerConfig::new(2, 0), "dim"),
        (
            VectorQuantizerConfig::new(2, 2).with_commitment(-1.0),
            "commitment",
        ),
        (
            VectorQuantizerConfig::new(2, 2).with_ema_decay(Some(1.0)),
            "ema_decay",
        ),
        (
            VectorQuantizerConfig::new(2, 2).with_usage_decay(0.0),
            "usage_decay",
        ),
        (
            VectorQuantizerConfig::new(2, 2).with_epsilon(f64::NAN),
            "epsilon",
        ),
        (
            VectorQuantizerConfig::new(2, 2).with_epsilon(0.0),
            "epsilon",
        ),
        (
            VectorQuantizerConfig::new(2, 2)
                .with_ema_decay(Some(0.9))
                .with_reseed_below(Some(-1.0)),
            "reseed_below",
        ),
        // re-seeding a gradient-trained codebook is refused
        (
            VectorQuantizerConfig::new(2, 2).with_reseed_below(Some(0.5)),
            "reseed_below",
        ),
    ] {
        let e = config.init::<B>(&Default::default()).unwrap_err();
        assert!(e.to_string().contains(&format!("`{field}`")), "{e}");
        // a given codebook goes through the same checks
        let e = config
            .with_codebook(t2::<B>(&[0.0; 4], [2, 2]))
            .unwrap_err();
        assert!(e.to_string().contains(&format!("`{field}`")), "{e}");
    }
    let e = VectorQuantizerConfig::new(3, 2)
        .with_codebook(t2::<B>(&[0.0; 6], [2, 3]))
        .unwrap_err();
    assert!(e.to_string().contains("`codebook`"), "{e}");
    let vq = VectorQuantizerConfig::new(512, 64)
        .init::<B>(&Default::default())
        .unwrap();
    assert_eq!(vq.codebook.val().dims(), [512, 64]);
    let bound = to_f64_vec(vq.codebook.val())
        .iter()
        .fold(0.0f64, |a, v| a.max(v.abs()));
    assert!(bound <= 1.0 / 512.0, "codes drawn in ±1/K, max {bound}");
}
