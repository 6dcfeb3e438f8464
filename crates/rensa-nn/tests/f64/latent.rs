//! Finite-difference checks in f64 of the Gaussian latent: the gradients of a reparameterised
//! sample, its log-density, and the KL divergences to the standard normal and to a learned prior,
//! with respect to both distributions' means and log-variances. (The vector quantiser's
//! gradients are defined by stop-gradients, which a finite difference cannot see; the f32 suite
//! checks them against their formulas.)

use burn::tensor::{Tensor, TensorData};
use rensa_nn::latent::DiagonalGaussian;
use rensa_testkit::{F64Autodiff, GradCheck, f64_device, seeded_normal};

type AD = F64Autodiff;

#[test]
fn gaussian_latent_gradients() {
    let (b, l) = (3, 4);
    let dev = f64_device();
    let inputs = vec![
        seeded_normal(1, b * l, 1.0),
        seeded_normal(2, b * l, 0.5),
        seeded_normal(3, b * l, 1.0),
        seeded_normal(4, b * l, 0.5),
    ];
    let noise = seeded_normal(5, b * l, 1.0);
    let weights = [
        seeded_normal(6, b * l, 1.0),
        seeded_normal(7, b, 1.0),
        seeded_normal(8, b, 1.0),
        seeded_normal(9, b, 1.0),
    ];
    let matrix = |v: &[f64]| Tensor::<AD, 2>::from_data(TensorData::new(v.to_vec(), [b, l]), &dev);
    let vector = |v: &[f64]| Tensor::<AD, 1>::from_data(TensorData::new(v.to_vec(), [b]), &dev);
    GradCheck::default().check(&inputs, |xs| {
        let m = |i: usize| xs[i].clone().reshape([b, l]);
        let q = DiagonalGaussian::new(m(0), m(1));
        let prior = DiagonalGaussian::new(m(2), m(3));
        let z = q.reparameterise(matrix(&noise));
        (z.clone() * matrix(&weights[0])).sum()
            + (q.kl_standard() * vector(&weights[1])).sum()
            + (q.kl(&prior) * vector(&weights[2])).sum()
            + (prior.log_prob(z) * vector(&weights[3])).sum()
    });
}
