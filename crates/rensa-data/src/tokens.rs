//! Padded batches of token-id pairs for an encoder-decoder with teacher forcing.
//!
//! A pair is a source sequence and a target sequence of ids. In a batch the sources are
//! right-padded with [`PAD`] to the longest one (their lengths kept for masking); each target
//! becomes the decoder's input `BOS y₁ … y_n` and the expected output `y₁ … y_n EOS`, padded
//! likewise (padding positions are left out of the loss by their zero weight in
//! [`PairBatch::target_mask`]).
//!
//! ```
//! use burn::backend::NdArray;
//! use rensa_data::tokens::PairBatch;
//! use rensa_data::vocab::{BOS, EOS, PAD};
//!
//! let batch = PairBatch::new(&[(&[5, 6, 7][..], &[7, 6][..]), (&[8][..], &[8][..])]);
//! assert_eq!(batch.source_lengths, vec![3, 1]);
//! assert_eq!(batch.decoder_input[..3], [BOS, 7, 6]);
//! assert_eq!(batch.target[3..], [8, EOS, PAD]);
//! let (source, decoder_input, target) = batch.tensors::<NdArray>(&Default::default());
//! assert_eq!((source.dims(), decoder_input.dims(), target.dims()), ([2, 3], [2, 3], [2, 3]));
//! ```

use crate::vocab::{BOS, EOS, PAD};
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

/// A batch of pairs, row-major `[batch, steps]` ids on the host; see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairBatch {
    /// Sequences in the batch.
    pub batch: usize,
    /// Source ids `[batch, source_steps]`, right-padded with [`PAD`].
    pub source: Vec<usize>,
    /// The longest source.
    pub source_steps: usize,
    /// Each source's length.
    pub source_lengths: Vec<usize>,
    /// Decoder inputs `[batch, target_steps]`: `BOS y₁ … y_n`, padded.
    pub decoder_input: Vec<usize>,
    /// Expected outputs `[batch, target_steps]`: `y₁ … y_n EOS`, padded.
    pub target: Vec<usize>,
    /// The longest target plus one (for `EOS`).
    pub target_steps: usize,
    /// Each target's length plus one (for `EOS`).
    pub target_lengths: Vec<usize>,
}

impl PairBatch {
    /// Pads `pairs` of `(source, target)` ids into one batch.
    ///
    /// # Panics
    /// On an empty batch or an empty source (an encoder needs at least one step).
    pub fn new(pairs: &[(&[usize], &[usize])]) -> Self {
        assert!(
            !pairs.is_empty(),
            "a batch of pairs needs at least one pair"
        );
        for (k, (s, _)) in pairs.iter().enumerate() {
            assert!(!s.is_empty(), "pair {k}: the source is empty");
        }
        let batch = pairs.len();
        let source_steps = pairs.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
        let target_steps = 1 + pairs.iter().map(|(_, t)| t.len()).max().unwrap_or(0);
        let mut out = Self {
            batch,
            source: vec![PAD; batch * source_steps],
            source_steps,
            source_lengths: pairs.iter().map(|(s, _)| s.len()).collect(),
            decoder_input: vec![PAD; batch * target_steps],
            target: vec![PAD; batch * target_steps],
            target_steps,
            target_lengths: pairs.iter().map(|(_, t)| t.len() + 1).collect(),
        };
        for (b, (s, t)) in pairs.iter().enumerate() {
            out.source[b * source_steps..][..s.len()].copy_from_slice(s);
            let row = b * target_steps;
            out.decoder_input[row] = BOS;
            out.decoder_input[row + 1..][..t.len()].copy_from_slice(t);
            out.target[row..][..t.len()].copy_from_slice(t);
            out.target[row + t.len()] = EOS;
        }
        out
    }

    /// A batch of owned `(source, target)` pairs, as a training loop's data source hands them
    /// (`rensa_train::Items::new(&pairs, PairBatch::of)`).
    pub fn of(pairs: &[&(Vec<usize>, Vec<usize>)]) -> Self {
        let borrowed: Vec<(&[usize], &[usize])> =
            pairs.iter().map(|(s, t)| (&s[..], &t[..])).collect();
        Self::new(&borrowed)
    }

    /// `(source, decoder_input, target)` as integer tensors on `device`.
    pub fn tensors<B: Backend>(
        &self,
        device: &B::Device,
    ) -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>, Tensor<B, 2, Int>) {
        let ids = |v: &[usize], steps| {
            let data: Vec<i64> = v.iter().map(|&x| x as i64).collect();
            Tensor::from_data(TensorData::new(data, [self.batch, steps]), device)
        };
        (
            ids(&self.source, self.source_steps),
            ids(&self.decoder_input, self.target_steps),
            ids(&self.target, self.target_steps),
        )
    }

    /// `[batch, target_steps]`: 1 where a target position is real (its `EOS` included), 0 on
    /// padding.
    pub fn target_mask<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        let steps = self.target_steps;
        let values: Vec<f32> = self
            .target_lengths
            .iter()
            .flat_map(|&len| (0..steps).map(move |t| if t < len { 1.0 } else { 0.0 }))
            .collect();
        Tensor::from_data(TensorData::new(values, [self.batch, steps]), device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_padded_and_shifted() {
        let b = PairBatch::new(&[(&[4, 5][..], &[6, 7, 8][..]), (&[9, 9, 9][..], &[][..])]);
        assert_eq!((b.source_steps, b.target_steps), (3, 4));
        assert_eq!(b.source, [4, 5, PAD, 9, 9, 9]);
        assert_eq!(b.decoder_input, [BOS, 6, 7, 8, BOS, PAD, PAD, PAD]);
        assert_eq!(b.target, [6, 7, 8, EOS, EOS, PAD, PAD, PAD]);
        assert_eq!(b.target_lengths, [4, 1]);
    }

    #[test]
    #[should_panic(expected = "pair 1: the source is empty")]
    fn an_empty_source_is_refused() {
        PairBatch::new(&[(&[4][..], &[5][..]), (&[][..], &[5][..])]);
    }
}
