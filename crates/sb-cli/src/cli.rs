//! Command-line parsing (clap) and dispatch.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use sb_methods::Direction;

use crate::run::{run, RunOptions};
use crate::sample::{sample, SampleOptions};

/// Schrödinger-bridge solvers (DSB, DSBM) and benchmarks: experiment files to tables.
#[derive(Debug, Parser)]
#[command(name = "sb", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train every method of an experiment file and write a run directory
    /// (config.yaml, results.json, results.md, samples and networks).
    Run {
        /// The experiment file (YAML).
        #[arg(required_unless_present = "resume")]
        experiment: Option<PathBuf>,
        /// The run directory [default: runs/<name>, or runs/<name>-2, … if taken].
        #[arg(long, conflicts_with = "resume")]
        out: Option<PathBuf>,
        /// Run this seed only, instead of the file's `seeds`.
        #[arg(long, conflicts_with = "resume")]
        seed: Option<u64>,
        /// Continue a run directory after an interruption: finished jobs are kept, the
        /// interrupted one continues from its last checkpoint (written after every pass).
        #[arg(long, value_name = "RUN_DIR", conflicts_with = "experiment")]
        resume: Option<PathBuf>,
        /// Print nothing but errors and the final table.
        #[arg(long)]
        quiet: bool,
        /// Run only every N-th job, starting at job I (0 ≤ I < N), into its own directory
        /// [default: runs/<name>-shard<I>of<N>]; `sb report` merges the shards. Inside a
        /// Slurm job array it defaults to the task's shard (SLURM_ARRAY_TASK_ID over the
        /// array's size).
        #[arg(long, value_name = "I/N", conflicts_with = "resume")]
        shard: Option<crate::jobs::Shard>,
    },
    /// Write Slurm scripts for an experiment: a job array with one shard per task and a
    /// dependent job that merges them with `sb report` (submit with `sh OUT/submit.sh`).
    Slurm {
        /// The experiment file (YAML).
        experiment: PathBuf,
        /// Array tasks (shards), at most the experiment's jobs.
        #[arg(long)]
        jobs: usize,
        /// Where the scripts, the shards and the merged report go [default: runs/<name>-slurm].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Time limit of each task (Slurm's format, e.g. 2:00:00).
        #[arg(long)]
        time: Option<String>,
        /// Partition.
        #[arg(long)]
        partition: Option<String>,
        /// CPUs per task (also each task's threads).
        #[arg(long, default_value_t = 2)]
        cpus: usize,
        /// Memory per task (e.g. 8G).
        #[arg(long)]
        mem: Option<String>,
        /// The sb executable the tasks run [default: this one].
        #[arg(long)]
        sb: Option<PathBuf>,
    },
    /// Merge run directories (the shards of one sweep, or runs of one experiment with other
    /// seeds) into one table: Markdown on stdout; with --out, also CSV and JSON.
    Report {
        /// Run directories written by `sb run`.
        #[arg(required = true)]
        run_dirs: Vec<PathBuf>,
        /// Write report.md, report.csv and report.json (and the merged results.json) here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Validate an experiment file (keys, values, data files, dimensions) without training.
    Check {
        /// The experiment file (YAML).
        experiment: PathBuf,
    },
    /// Redraw the pictures (samples.png, samples.svg) of every model in a run directory.
    Plot {
        /// A run directory written by `sb run`.
        run_dir: PathBuf,
    },
    /// Transport points with a trained bridge.
    Sample {
        /// A run directory written by `sb run` (or one model directory inside it).
        run_dir: PathBuf,
        /// Forward (from π0 to π1) or backward (from π1 to π0).
        #[arg(long, value_enum)]
        direction: DirectionArg,
        /// The starting points (.npy, .npz or .csv; one row a point).
        #[arg(long)]
        from: PathBuf,
        /// Where to write the transported points (.npy as float32, or .csv).
        #[arg(long)]
        out: PathBuf,
        /// Euler–Maruyama steps [default: as trained].
        #[arg(long)]
        steps: Option<usize>,
        /// Seed of the sampling noise.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Which model, as a path under RUN_DIR/models (when the run holds several).
        #[arg(long)]
        model: Option<PathBuf>,
        /// A conditional bridge's observations y (one row per starting point, or one row for
        /// all); FROM then holds x alone, and so does OUT.
        #[arg(long)]
        given: Option<PathBuf>,
    },
    /// Compute one metric between point clouds (.npy, float32 or float64) and print one JSON line.
    #[command(subcommand)]
    Metric(MetricCommand),
    /// Time the hot paths as ../shared/peer/torch_bench.py times PyTorch; one JSON line each.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Optimizer steps per second: fresh batch, MLP on [x, t], MSE, backward, Adam (lr 1e-4).
    TrainStep {
        #[command(flatten)]
        net: NetArgs,
        /// Batch size.
        #[arg(long, default_value_t = 512)]
        batch: usize,
        /// Timed steps (after 20 warm-up steps).
        #[arg(long, default_value_t = 300)]
        steps: usize,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Particle-steps per second of Euler–Maruyama with the MLP as drift (after a warm-up pass).
    Sample {
        #[command(flatten)]
        net: NetArgs,
        /// Particles.
        #[arg(long, default_value_t = 10000)]
        batch: usize,
        /// Euler steps.
        #[arg(long, default_value_t = 20)]
        num_steps: usize,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// GFLOP/s of an n × n by n × n f32 matrix product (faer, rows split across threads): the
    /// matrix peak the network's kernels can reach.
    Matmul {
        /// Matrix size.
        #[arg(long, default_value_t = 2048)]
        n: usize,
        /// Timed products (after one warm-up product).
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Seconds of exact W1 between N(0, I) and N(0.5·1, I) clouds of n points (network simplex).
    W1 {
        /// Points per cloud.
        #[arg(long, default_value_t = 4000)]
        n: usize,
        /// Dimension.
        #[arg(long, default_value_t = 5)]
        dim: usize,
    },
}

#[derive(Debug, clap::Args)]
struct NetArgs {
    /// Dimension of the points.
    #[arg(long, default_value_t = 2)]
    dim: usize,
    /// Width of each hidden layer.
    #[arg(long, default_value_t = 256)]
    hidden: usize,
    /// Number of hidden layers.
    #[arg(long, default_value_t = 3)]
    layers: usize,
}

impl NetArgs {
    fn shape(&self) -> crate::bench::NetShape {
        crate::bench::NetShape {
            dim: self.dim,
            hidden: self.hidden,
            layers: self.layers,
        }
    }
}

#[derive(Debug, Subcommand)]
enum MetricCommand {
    /// Exact W1 (Euclidean cost) between two clouds, sizes may differ.
    W1 {
        /// The first cloud, shape (n, d).
        a: PathBuf,
        /// The second cloud, shape (m, d).
        b: PathBuf,
    },
    /// Exact W2 (squared Euclidean cost, then the root) between two clouds, sizes may differ.
    W2 {
        /// The first cloud, shape (n, d).
        a: PathBuf,
        /// The second cloud, shape (m, d).
        b: PathBuf,
    },
    /// Entropic OT (Sinkhorn) with the squared Euclidean cost: ⟨P, C⟩ of the plan, its
    /// iterations and marginal error.
    Sinkhorn {
        /// The first cloud, shape (n, d).
        a: PathBuf,
        /// The second cloud, shape (m, d).
        b: PathBuf,
        /// The regularisation ε.
        #[arg(long)]
        reg: f64,
        /// Stop when the first marginal's L1 error is below this.
        #[arg(long, default_value_t = 1e-9)]
        tol: f64,
    },
    /// BW2²-UVP (percent) of samples against a Gaussian given by moments or by samples.
    BwUvp {
        /// The samples, shape (n, d).
        samples: PathBuf,
        /// The target mean, shape (d,).
        #[arg(long, requires = "cov", conflicts_with = "target")]
        mean: Option<PathBuf>,
        /// The target covariance, shape (d, d).
        #[arg(long, requires = "mean", conflicts_with = "target")]
        cov: Option<PathBuf>,
        /// Samples of the target, shape (m, d), to fit a Gaussian to.
        #[arg(long, required_unless_present = "mean")]
        target: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DirectionArg {
    Forward,
    Backward,
}

/// Parses `args` (the program name first) and runs the subcommand; returns the exit code.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match dispatch(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn dispatch(cli: Cli) -> crate::Result<()> {
    match cli.command {
        Command::Run {
            experiment,
            out,
            seed,
            resume,
            quiet,
            shard,
        } => {
            crate::run::stop_cleanly_on_ctrl_c();
            let shard = match (shard, &resume) {
                (None, None) => crate::slurm::shard_from_env(|k| std::env::var(k).ok())?,
                (s, _) => s,
            };
            // The run goes on one of rayon's worker threads: each parallel region of a
            // training step then starts from inside the pool (the other workers steal its
            // tasks) instead of being injected from outside and waited for on a lock, which
            // costs two thread hand-offs per region (docs/performance.md).
            let (dir, _) = rayon::scope(|_| match (resume, experiment) {
                (Some(dir), _) => crate::run::resume(&dir, quiet),
                (None, Some(exp)) => run(
                    &exp,
                    &RunOptions {
                        out,
                        seed,
                        quiet,
                        shard,
                    },
                ),
                (None, None) => unreachable!("clap requires EXPERIMENT or --resume"),
            })?;
            let table = dir.join("results.md");
            let text =
                std::fs::read_to_string(&table).map_err(|e| crate::CliError::io(&table, e))?;
            println!("{text}");
            println!("run directory: {}", dir.display());
        }
        Command::Report { run_dirs, out } => {
            let report = crate::report::report(&run_dirs)?;
            if !report.missing.is_empty() {
                eprintln!(
                    "warning: {} job(s) of the experiment are in none of these directories: {}",
                    report.missing.len(),
                    report.missing.join("; ")
                );
            }
            let md = report.markdown();
            if let Some(dir) = out {
                report.write(&dir)?;
                eprintln!(
                    "wrote report.md, report.csv, report.json and results.json in {}",
                    dir.display()
                );
            }
            print!("{md}");
        }
        Command::Plot { run_dir } => {
            let models = crate::layout::find_models(&run_dir);
            if models.is_empty() {
                return Err(crate::CliError::Input(format!(
                    "{}: no trained model (model.yaml) found; pass the directory written by `sb run`",
                    run_dir.display()
                )));
            }
            for m in &models {
                crate::plot::plot_model(m)?;
                println!("{}", m.join("samples.png").display());
            }
            let text = std::fs::read_to_string(run_dir.join("config.yaml")).unwrap_or_default();
            if let Ok(exp) = serde_yaml::from_str::<crate::experiment::Experiment>(&text) {
                for p in &exp.problems {
                    crate::plot::progress_chart(&run_dir, &p.name)?;
                }
            }
        }
        Command::Slurm {
            experiment,
            jobs,
            out,
            time,
            partition,
            cpus,
            mem,
            sb,
        } => {
            let out = match out {
                Some(o) => o,
                None => {
                    let exp = crate::experiment::Experiment::load(&experiment)?;
                    PathBuf::from("runs").join(format!("{}-slurm", crate::layout::slug(&exp.name)))
                }
            };
            let files = crate::slurm::write_scripts(
                &experiment,
                &crate::slurm::SlurmOptions {
                    jobs,
                    out,
                    time,
                    partition,
                    cpus,
                    mem,
                    sb,
                },
            )?;
            println!(
                "wrote {}, {} and {}; submit with: sh {}",
                files.array.display(),
                files.merge.display(),
                files.submit.display(),
                files.submit.display()
            );
        }
        Command::Check { experiment } => {
            let (exp, jobs, (summary, warnings)) = crate::run::check_with_summary(&experiment)?;
            print!("{summary}");
            for w in &warnings {
                println!("warning: {w}");
            }
            println!(
                "{}: ok — {} problem(s) × {} method(s) × {} seed(s): {jobs} job(s) with held-out times and reference rows",
                experiment.display(),
                exp.problems.len(),
                exp.methods.len(),
                exp.seeds.len()
            );
        }
        Command::Sample {
            run_dir,
            direction,
            from,
            out,
            steps,
            seed,
            model,
            given,
        } => {
            let direction = match direction {
                DirectionArg::Forward => Direction::Forward,
                DirectionArg::Backward => Direction::Backward,
            };
            let used = sample(&SampleOptions {
                run_dir,
                model,
                direction,
                from,
                out: out.clone(),
                steps,
                seed,
                given,
            })?;
            eprintln!(
                "wrote {} with the model in {}",
                out.display(),
                used.display()
            );
        }
        Command::Bench(b) => {
            let line = match b {
                BenchCommand::TrainStep {
                    net,
                    batch,
                    steps,
                    threads,
                } => {
                    crate::bench::set_threads(threads);
                    serde_json::to_string(&crate::bench::train_step(
                        net.shape(),
                        batch,
                        steps,
                        threads,
                    )?)
                }
                BenchCommand::Sample {
                    net,
                    batch,
                    num_steps,
                    threads,
                } => {
                    crate::bench::set_threads(threads);
                    serde_json::to_string(&crate::bench::sample(
                        net.shape(),
                        batch,
                        num_steps,
                        threads,
                    )?)
                }
                BenchCommand::Matmul {
                    n,
                    repeats,
                    threads,
                } => {
                    crate::bench::set_threads(threads);
                    serde_json::to_string(&crate::bench::matmul(n, repeats, threads))
                }
                BenchCommand::W1 { n, dim } => serde_json::to_string(&crate::bench::w1(n, dim)?),
            };
            println!("{}", line.expect("plain data serialises"));
        }
        Command::Metric(m) => {
            let line = match m {
                MetricCommand::W1 { a, b } => crate::metric::wasserstein(&a, &b, false)?,
                MetricCommand::W2 { a, b } => crate::metric::wasserstein(&a, &b, true)?,
                MetricCommand::Sinkhorn { a, b, reg, tol } => {
                    crate::metric::sinkhorn(&a, &b, reg, tol)?
                }
                MetricCommand::BwUvp {
                    samples,
                    mean,
                    cov,
                    target,
                } => {
                    let target = match (mean, cov, target) {
                        (Some(mean), Some(cov), None) => {
                            crate::metric::BwTarget::Moments { mean, cov }
                        }
                        (None, None, Some(t)) => crate::metric::BwTarget::Samples(t),
                        _ => unreachable!("clap enforces --mean with --cov, or --target"),
                    };
                    crate::metric::bw_uvp(&samples, &target)?
                }
            };
            println!(
                "{}",
                serde_json::to_string(&line).expect("plain data serialises")
            );
        }
    }
    Ok(())
}
