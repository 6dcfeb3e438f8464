//! One Adam step over a parameter tensor, in place, one pass.
//!
//! burn's Adam is about thirteen tensor operations per parameter tensor and step, each a pass over
//! memory with its own output buffer; for a VAE's 650k weights that is most of the elementwise
//! work of a training step. Here the parameter, both moments and the gradient are read once and
//! the first three written once, with the same operations in the same order as burn's (so the same
//! results in IEEE arithmetic).

use rayon::prelude::*;

use super::{Real, with_best_isa};

/// Elements per parallel task.
const CHUNK: usize = 1 << 15;

/// The scalars of one step, in the element type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdamScalars<E> {
    /// `β₁` and `1 − β₁`.
    pub beta_1: (E, E),
    /// `β₂` and `1 − β₂`.
    pub beta_2: (E, E),
    /// `√(1 − β₂ᵗ) / (1 − β₁ᵗ)`, the bias corrections folded into one factor of `m`.
    pub correction: E,
    /// `ε √(1 − β₂ᵗ)`, the denominator's `ε` after the same folding.
    pub epsilon: E,
    /// The learning rate.
    pub lr: E,
    /// The L2 penalty added to the gradient (`penalty · θ + g`), if any.
    pub weight_decay: Option<E>,
}

#[inline(always)]
fn update<E: Real>(p: &mut [E], g: &[E], m: &mut [E], v: &mut [E], s: &AdamScalars<E>) {
    let (b1, c1) = s.beta_1;
    let (b2, c2) = s.beta_2;
    let decay = s.weight_decay.unwrap_or(E::zero());
    let decayed = s.weight_decay.is_some();
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = if decayed { *p * decay + g } else { g };
        *m = *m * b1 + g * c1;
        *v = *v * b2 + (g * g) * c2;
        let step = (*m * s.correction) / (v.sqrt() + s.epsilon);
        *p = *p - step * s.lr;
    }
}

/// `θ ← θ − lr · m̂ / (√v̂ + ε)` after `m ← β₁ m + (1 − β₁) g`, `v ← β₂ v + (1 − β₂) g²`, for
/// the parameter `p`, its gradient `g` and the moments `m`, `v` (all the same length).
pub(crate) fn adam_step<E: Real>(
    p: &mut [E],
    g: &[E],
    m: &mut [E],
    v: &mut [E],
    s: &AdamScalars<E>,
) {
    let n = p.len();
    assert!(
        g.len() == n && m.len() == n && v.len() == n,
        "adam_step: parameter {n}, gradient {}, moments {} and {}",
        g.len(),
        m.len(),
        v.len()
    );
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
        .for_each(|((p, g), (m, v))| {
            with_best_isa(
                #[inline(always)]
                || update(p, g, m, v, s),
            )
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalars(weight_decay: Option<f32>) -> AdamScalars<f32> {
        AdamScalars {
            beta_1: (0.9, 1.0 - 0.9),
            beta_2: (0.999, 1.0 - 0.999),
            correction: 0.3,
            epsilon: 1e-5,
            lr: 1e-3,
            weight_decay,
        }
    }

    /// The step element by element, in burn's order of operations.
    fn by_definition(p: f32, g: f32, m: f32, v: f32, s: &AdamScalars<f32>) -> [f32; 3] {
        let g = s.weight_decay.map_or(g, |d| p * d + g);
        let m = m * s.beta_1.0 + g * s.beta_1.1;
        let v = v * s.beta_2.0 + (g * g) * s.beta_2.1;
        let step = (m * s.correction) / (v.sqrt() + s.epsilon);
        [p - step * s.lr, m, v]
    }

    #[test]
    fn matches_the_definition_bit_for_bit_across_chunks() {
        for decay in [None, Some(0.01)] {
            let s = scalars(decay);
            let n = 2 * CHUNK + 37; // several tasks and a ragged end
            let at = |i: usize, k: f32| (i as f32 * k).sin() * 0.5;
            let mut p: Vec<f32> = (0..n).map(|i| at(i, 0.37)).collect();
            let g: Vec<f32> = (0..n).map(|i| at(i, 1.3) * 1e-2).collect();
            let mut m: Vec<f32> = (0..n).map(|i| at(i, 0.11) * 1e-3).collect();
            let mut v: Vec<f32> = (0..n).map(|i| at(i, 0.7).abs() * 1e-5).collect();
            let want: Vec<[f32; 3]> = (0..n)
                .map(|i| by_definition(p[i], g[i], m[i], v[i], &s))
                .collect();
            adam_step(&mut p, &g, &mut m, &mut v, &s);
            for i in 0..n {
                assert_eq!([p[i], m[i], v[i]], want[i], "element {i}, decay {decay:?}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "adam_step")]
    fn refuses_mismatched_lengths() {
        let (mut p, mut m, mut v) = (vec![0.0f32; 3], vec![0.0; 3], vec![0.0; 3]);
        adam_step(&mut p, &[0.0; 2], &mut m, &mut v, &scalars(None));
    }
}
