//! The jobs of an experiment, in one fixed order, and shards of them.
//!
//! A job is one (benchmark, method, seed): one bridge trained and evaluated, or one
//! reference row computed without training. The order depends only on the experiment
//! file, so `--shard I/N` picks the same jobs on every machine and `sb report` can put
//! shards back together.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::experiment::{Experiment, Metric, Problem};
use crate::Result;

/// A row that needs no training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference {
    /// Leave-one-out: McCann's interpolation along the exact OT plan between the neighbours.
    OtInterpolation,
    /// Leave-one-out: the cells of the earlier neighbour, unchanged, as the prediction.
    PreviousTime,
    /// Gaussian problems: the closed-form bridge's own values (the optimum).
    ClosedForm,
    /// Split problems: the validation points against the test points, what a perfect model
    /// would score at this number of points.
    SameDistribution,
    /// Inverse problems: draws of the prior for every observation, what a sampler that
    /// ignores `y` would score.
    Prior,
    /// Split problems with `gaussian_row`: a Gaussian fitted to each split end's train
    /// points, scored like a model.
    GaussianFit,
    /// Inverse problems without a Gaussian prior: exact (rejection-sampled) posterior draws,
    /// scored like a model (the estimator's floor).
    ExactPosterior,
    /// Inverse problems on data rows: for each observation, the `x` of the train row whose `y`
    /// is nearest (a lookup that a bridge should beat).
    NearestRow,
}

impl Reference {
    /// The name in the `method` column.
    pub fn label(self) -> &'static str {
        match self {
            Self::OtInterpolation => "OT interpolation (reference)",
            Self::PreviousTime => "Previous time (reference)",
            Self::ClosedForm => "Closed form (optimum)",
            Self::SameDistribution => "Same distribution (floor)",
            Self::Prior => "Prior, y ignored (reference)",
            Self::GaussianFit => "Gaussian fit (reference)",
            Self::ExactPosterior => "Exact posterior (floor)",
            Self::NearestRow => "Nearest train row (reference)",
        }
    }
}

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Train `methods[i]` and evaluate it.
    Train(usize),
    /// Compute a reference row.
    Reference(Reference),
}

/// One job of an experiment.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Index of the problem in `problems`.
    pub problem: usize,
    /// For leave-one-out problems, the held-out time.
    pub held_out: Option<f64>,
    /// What to do.
    pub work: Work,
    /// The seed (references, which draw nothing, use 0).
    pub seed: u64,
    /// The `benchmark` column: the problem's name, with ` t=<time>` for a held-out time.
    pub benchmark: String,
    /// The `method` column.
    pub method: String,
}

/// The benchmark name of one held-out time of a leave-one-out problem.
pub fn part_name(problem: &str, held_out: f64) -> String {
    format!("{problem} t={held_out}")
}

/// The method's name in results: its label, or the solver's own name.
///
/// # Errors
/// A method that cannot be built with the problem's σ.
pub fn method_name(exp: &Experiment, method: usize, problem: &Problem) -> Result<String> {
    let entry = &exp.methods[method];
    Ok(match &entry.label {
        Some(l) => l.clone(),
        None => entry
            .method
            .build(problem.sigma.for_checks())?
            .name(entry.train.passes),
    })
}

/// Every job of `exp`, in the fixed order: problem by problem (and held-out time by
/// held-out time), the reference rows first, then method by method, seed by seed.
///
/// # Errors
/// A method that cannot be built (see [`method_name`]).
pub fn jobs(exp: &Experiment) -> Result<Vec<Job>> {
    let mut out = Vec::new();
    for (p, problem) in exp.problems.iter().enumerate() {
        let parts: Vec<Option<f64>> = match &problem.leave_one_out {
            Some(loo) => loo.held_out.iter().map(|t| Some(*t)).collect(),
            None => vec![None],
        };
        let mut references = Vec::new();
        match &problem.leave_one_out {
            Some(loo) if loo.references => {
                references.extend([Reference::OtInterpolation, Reference::PreviousTime]);
            }
            Some(_) => {}
            None if problem.inverse.as_ref().is_some_and(|i| i.from_rows()) => {
                // The held-out rows themselves, a lookup, and the train rows ignoring y.
                references.extend([
                    Reference::SameDistribution,
                    Reference::NearestRow,
                    Reference::Prior,
                ]);
            }
            None if problem.inverse.is_some() => {
                let gaussian = problem
                    .inverse
                    .as_ref()
                    .is_some_and(|i| matches!(i.prior.gaussian_parameters(), Ok(Some(_))));
                references.push(if gaussian {
                    Reference::ClosedForm
                } else {
                    Reference::ExactPosterior
                });
                references.push(Reference::Prior);
            }
            None => {
                if exp.metrics_for(problem).contains(&Metric::CrossCov) {
                    references.push(Reference::ClosedForm);
                }
                if problem.split.is_some() {
                    references.push(Reference::SameDistribution);
                }
                if problem.gaussian_row {
                    references.push(Reference::GaussianFit);
                }
            }
        }
        for held_out in parts {
            let benchmark = match held_out {
                Some(t) => part_name(&problem.name, t),
                None => problem.name.clone(),
            };
            for &r in &references {
                out.push(Job {
                    problem: p,
                    held_out,
                    work: Work::Reference(r),
                    seed: 0,
                    benchmark: benchmark.clone(),
                    method: r.label().to_string(),
                });
            }
            for m in 0..exp.methods.len() {
                let method = method_name(exp, m, problem)?;
                for &seed in &exp.seeds {
                    out.push(Job {
                        problem: p,
                        held_out,
                        work: Work::Train(m),
                        seed,
                        benchmark: benchmark.clone(),
                        method: method.clone(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// `I/N`: the jobs whose position in [`jobs`] is `I` modulo `N` (`0 ≤ I < N`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Shard {
    /// Which shard, from 0.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

impl Shard {
    /// Whether the job at `position` belongs to this shard.
    pub fn contains(self, position: usize) -> bool {
        position % self.count == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || {
            format!("`{s}` is not a shard: write I/N with 0 ≤ I < N, e.g. 0/4 … 3/4 (a Slurm array's task id over its size)")
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl TryFrom<String> for Shard {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<Shard> for String {
    fn from(s: Shard) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shards_parse_and_refuse_nonsense() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("0 ≤ I < N"), "{e}");
        }
    }

    proptest! {
        /// The shards of a job list cover every job exactly once.
        #[test]
        fn shards_partition_the_jobs(count in 1usize..9, jobs in 0usize..100) {
            for position in 0..jobs {
                let owners = (0..count)
                    .filter(|&index| Shard { index, count }.contains(position))
                    .count();
                prop_assert_eq!(owners, 1);
            }
        }
    }
}
