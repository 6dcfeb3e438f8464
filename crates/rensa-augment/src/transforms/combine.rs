//! Combinators: steps in order, steps with a probability, one step out of several.

use super::support::param;
use super::{Step, Transform};
use crate::error::{Result, check_p};
use crate::image::Size;
use crate::ops::Op;
use crate::rng::SampleRng;
use serde::{Deserialize, Serialize};

/// Several steps applied in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compose {
    /// The steps.
    pub steps: Vec<Step>,
}
impl Transform for Compose {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn steps(&self) -> &[Step] {
        &self.steps
    }
    fn validate(&self) -> Result<()> {
        self.steps.iter().try_for_each(|s| s.validate())
    }
    fn plan(&self, rng: &mut SampleRng, mut size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        for s in &self.steps {
            size = s.plan(rng, size, ops)?;
        }
        Ok(size)
    }
}

/// Applies its steps (in order) with probability `p`, or none of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomApply {
    /// Probability.
    pub p: f64,
    /// The steps.
    pub steps: Vec<Step>,
}
impl Transform for RandomApply {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn steps(&self) -> &[Step] {
        &self.steps
    }
    fn validate(&self) -> Result<()> {
        check_p(Self::NAME, self.p)?;
        self.steps.iter().try_for_each(|s| s.validate())
    }
    fn plan(&self, rng: &mut SampleRng, mut size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        if rng.chance(self.p) {
            for s in &self.steps {
                size = s.plan(rng, size, ops)?;
            }
        }
        Ok(size)
    }
}

/// Applies one of its steps, chosen uniformly or by `weights`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneOf {
    /// The candidates.
    pub steps: Vec<Step>,
    /// Relative weights (default equal).
    #[serde(default)]
    pub weights: Option<Vec<f64>>,
}
impl Transform for OneOf {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn steps(&self) -> &[Step] {
        &self.steps
    }
    fn validate(&self) -> Result<()> {
        if self.steps.is_empty() {
            return Err(param(Self::NAME, "steps", "must not be empty"));
        }
        if let Some(w) = &self.weights
            && (w.len() != self.steps.len()
                || w.iter().any(|v| !(v.is_finite() && *v >= 0.0))
                || !(w.iter().sum::<f64>() > 0.0 && w.iter().sum::<f64>().is_finite()))
        {
            return Err(param(
                Self::NAME,
                "weights",
                "need one finite non-negative weight per step, not all zero, with a finite sum",
            ));
        }
        self.steps.iter().try_for_each(|s| s.validate())
    }
    fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        let i = match &self.weights {
            None => rng.int(0, self.steps.len() - 1),
            Some(w) => {
                let mut t = rng.uniform(0.0, w.iter().sum());
                let mut pick = w.len() - 1;
                for (i, v) in w.iter().enumerate() {
                    if t < *v {
                        pick = i;
                        break;
                    }
                    t -= v;
                }
                pick
            }
        };
        self.steps[i].plan(rng, size, ops)
    }
}
