//! Data of the binary-addition RNN: two operands below 128 are fed one bit of each per step,
//! least significant bit first, and the target at step `t` is bit `t` of their sum (which fits
//! in 8 bits). Operands are drawn uniformly from `0..128` by a seeded [`PairSampler`]; the whole
//! task has 128 × 128 = 16,384 pairs ([`all_pairs`]), so a model can be checked exhaustively.

use burn::tensor::{Tensor, TensorData, backend::Backend};

use crate::SplitMix64;

/// Bits per number (the sum of two operands below [`OPERAND_LIMIT`] fits).
pub const BITS: usize = 8;
/// Operands are drawn from `0..OPERAND_LIMIT`, so their sum is below `2^BITS`.
pub const OPERAND_LIMIT: u32 = 1 << (BITS - 1);
/// Every pair of operands: `128 × 128`.
pub const ALL_PAIRS: usize = (OPERAND_LIMIT * OPERAND_LIMIT) as usize;
/// Inputs per step: one bit of each operand.
pub const INPUTS: usize = 2;

/// The bits of `n`, least significant first (the order the network reads them).
pub fn bits_lsb_first(n: u32) -> [f32; BITS] {
    std::array::from_fn(|t| ((n >> t) & 1) as f32)
}

/// The number whose bits, least significant first, are `bits` rounded to 0 or 1 (a bit is 1
/// from 0.5 up, as `np.round` rounds a probability).
pub fn from_bits_lsb_first(bits: &[f32]) -> u32 {
    bits.iter()
        .enumerate()
        .map(|(t, &b)| u32::from(b >= 0.5) << t)
        .sum()
}

/// Random operand pairs, each operand uniform on `0..OPERAND_LIMIT` (NumPy's
/// `np.random.randint(largest_number / 2)`), from a seeded generator.
#[derive(Clone, Debug)]
pub struct PairSampler {
    rng: SplitMix64,
}

impl PairSampler {
    /// A sampler whose draws depend only on `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SplitMix64::new(seed),
        }
    }

    /// The next pair `(a, b)`.
    pub fn pair(&mut self) -> (u32, u32) {
        let limit = OPERAND_LIMIT as usize;
        (self.rng.below(limit) as u32, self.rng.below(limit) as u32)
    }

    /// The next `n` pairs.
    pub fn pairs(&mut self, n: usize) -> Vec<(u32, u32)> {
        (0..n).map(|_| self.pair()).collect()
    }
}

/// Every pair `(a, b)` with `a, b < 128`, `a` major.
pub fn all_pairs() -> Vec<(u32, u32)> {
    (0..OPERAND_LIMIT)
        .flat_map(|a| (0..OPERAND_LIMIT).map(move |b| (a, b)))
        .collect()
}

/// A batch of additions laid out for the network.
#[derive(Clone, Debug)]
pub struct Batch<B: Backend> {
    /// `[N, BITS, 2]`: step `t` holds bit `t` of `a` and of `b`.
    pub inputs: Tensor<B, 3>,
    /// `[N, BITS, 1]`: bit `t` of `a + b`.
    pub targets: Tensor<B, 3>,
}

impl<B: Backend> Batch<B> {
    /// Encodes `pairs`.
    ///
    /// # Panics
    /// If `pairs` is empty or an operand is not below [`OPERAND_LIMIT`] (the sum would not fit
    /// in [`BITS`] bits).
    pub fn new(pairs: &[(u32, u32)], device: &B::Device) -> Self {
        assert!(!pairs.is_empty(), "a batch needs at least one pair");
        let mut inputs = Vec::with_capacity(pairs.len() * BITS * INPUTS);
        let mut targets = Vec::with_capacity(pairs.len() * BITS);
        for &(a, b) in pairs {
            assert!(
                a < OPERAND_LIMIT && b < OPERAND_LIMIT,
                "operands must be below {OPERAND_LIMIT}, got ({a}, {b})"
            );
            let (a_bits, b_bits) = (bits_lsb_first(a), bits_lsb_first(b));
            for t in 0..BITS {
                inputs.extend([a_bits[t], b_bits[t]]);
            }
            targets.extend(bits_lsb_first(a + b));
        }
        let n = pairs.len();
        Self {
            inputs: Tensor::from_data(TensorData::new(inputs, [n, BITS, INPUTS]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n, BITS, 1]), device),
        }
    }

    /// Pairs in the batch.
    pub fn len(&self) -> usize {
        self.inputs.dims()[0]
    }

    /// Always false (a batch has at least one pair).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_least_significant_first() {
        assert_eq!(bits_lsb_first(6), [0., 1., 1., 0., 0., 0., 0., 0.]);
        for n in [0, 1, 37, 128, 254] {
            assert_eq!(from_bits_lsb_first(&bits_lsb_first(n)), n);
        }
        assert_eq!(from_bits_lsb_first(&[0.49, 0.5, 0.9]), 0b110);
    }

    #[test]
    fn the_sampler_is_seeded_and_in_range() {
        let a = PairSampler::new(3).pairs(500);
        assert_eq!(a, PairSampler::new(3).pairs(500));
        assert_ne!(a, PairSampler::new(4).pairs(500));
        assert!(
            a.iter()
                .all(|&(x, y)| x < OPERAND_LIMIT && y < OPERAND_LIMIT)
        );
        assert_eq!(all_pairs().len(), ALL_PAIRS);
    }

    #[test]
    fn a_batch_holds_the_operand_bits_and_the_sum() {
        let batch = Batch::<burn::backend::NdArray>::new(&[(5, 3)], &Default::default());
        let x: Vec<f32> = batch.inputs.into_data().to_vec().unwrap();
        let y: Vec<f32> = batch.targets.into_data().to_vec().unwrap();
        assert_eq!(&x[..6], &[1., 1., 0., 1., 1., 0.]); // steps 0-2: (a_t, b_t)
        assert_eq!(y, bits_lsb_first(8).to_vec());
    }

    #[test]
    #[should_panic(expected = "operands must be below 128")]
    fn an_operand_too_large_is_refused() {
        Batch::<burn::backend::NdArray>::new(&[(128, 0)], &Default::default());
    }
}
