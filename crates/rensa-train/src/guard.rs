//! The NaN guard's check of a model's weights.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};

/// Adds up `x − x` over every float parameter: 0 when all are finite, NaN otherwise (`∞ − ∞`
/// and `NaN − NaN` are NaN, and a sum of zeros cannot overflow as a sum of the weights could).
struct Residue<B: Backend> {
    sum: Option<Tensor<B, 1>>,
}

impl<B: Backend> ModuleVisitor<B> for Residue<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let t = param.val();
        let r = (t.clone() - t).sum();
        self.sum = Some(match self.sum.take() {
            Some(s) => s + r,
            None => r,
        });
    }
}

/// The paths of the float parameters that hold a NaN or an infinity.
struct Culprits {
    path: Vec<String>,
    found: Vec<String>,
}

impl<B: Backend> ModuleVisitor<B> for Culprits {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let t = param.val();
        let r: f64 = (t.clone() - t).sum().into_scalar().elem();
        if !r.is_finite() {
            let name = self.path.join(".");
            self.found.push(if name.is_empty() {
                format!("a parameter of shape {:?}", param.val().dims())
            } else {
                name
            });
        }
    }
}

/// `None` when every float parameter of `model` is finite (one reduction per parameter and one
/// read); otherwise the paths of those that are not.
pub(crate) fn non_finite_weights<B: Backend, M: Module<B>>(model: &M) -> Option<Vec<String>> {
    let mut residue = Residue::<B> { sum: None };
    model.visit(&mut residue);
    let sum: f64 = residue.sum?.into_scalar().elem();
    if sum.is_finite() {
        return None;
    }
    let mut culprits = Culprits {
        path: Vec::new(),
        found: Vec::new(),
    };
    model.visit::<Culprits>(&mut culprits);
    Some(culprits.found)
}
