//! What a model must say to be trained.

use burn::tensor::{Tensor, backend::Backend};

/// A model's training objective on a batch of items.
///
/// Implement it for every backend (`impl<B: Backend> Objective<B> for MyModel<B>`) so that the
/// same code gives the training loss (on the autodiff backend) and the validation loss (on the
/// inner backend, through `model.valid()`).
pub trait Objective<B: Backend> {
    /// One training example, kept on the host (e.g. a window of a series, an index).
    type Item: Clone + Send + Sync;

    /// The mean loss over `items`, a one-element tensor.
    fn loss(&self, items: &[Self::Item], device: &B::Device) -> Tensor<B, 1>;

    /// Further metrics over `items` (e.g. an accuracy or a mean absolute error), by name.
    /// [`fit`](crate::fit) evaluates them after every epoch on the validation items (or on the
    /// training items when there is no validation split) and keeps them in the
    /// [`History`](crate::History). None by default.
    fn metrics(&self, items: &[Self::Item], device: &B::Device) -> Vec<(String, f64)> {
        let _ = (items, device);
        Vec::new()
    }
}
