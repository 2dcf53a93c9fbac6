use candle_core::Device;
use ndarray::Axis;
use sb_data::{Distribution, MatrixSpec, SbRng, VectorSpec};
use sb_methods::dsb::DsbConfig;
use sb_methods::net::NetConfig;
use sb_methods::tensor::to_f32;
use sb_methods::{Direction, MethodConfig, TrainConfig, Trainer};

#[test]
fn debug() {
    let g = |m: Vec<f64>, v: Vec<f64>| Distribution::Gaussian { dim: m.len(), mean: VectorSpec::Full(m), cov: MatrixSpec::Diagonal(v) }.load().unwrap();
    let (pi0, pi1) = (g(vec![-0.5], vec![0.5]), g(vec![0.5], vec![1.5]));
    for (steps, lr) in [(600usize, 2e-3)] {
        let t0 = std::time::Instant::now();
        let solver = MethodConfig::Dsb(DsbConfig::default()).build(1.0).unwrap();
        let net = NetConfig { hidden: vec![64, 64], ..NetConfig::default() };
        let train = TrainConfig { passes: 8, steps_per_pass: steps, batch_size: 512, lr, cache_size: 2048, ..TrainConfig::default() };
        let mut rng = SbRng::new(11);
        let b = Trainer::new(solver, net, train, Device::Cpu).unwrap().train(&pi0, &pi1, &mut rng, &mut []).unwrap();
        let f = b.sample(Direction::Forward, &to_f32(&pi0.sample(4000, &mut rng)), &mut rng, false).unwrap();
        let bw = b.sample(Direction::Backward, &to_f32(&pi1.sample(4000, &mut rng)), &mut rng, false).unwrap();
        let m = |a: &ndarray::Array2<f32>| (a.mean_axis(Axis(0)).unwrap().to_vec(), a.var_axis(Axis(0), 1.0).to_vec());
        println!("steps {steps} lr {lr}: fwd {:?} (want .5 -.25 / 1.5 .7) bwd {:?} (want -.5 .25 / .5 1) {:?}", m(f.end()), m(bw.end()), t0.elapsed());
    }
}
