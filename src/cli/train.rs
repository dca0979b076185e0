//! `dualmine train`: trains W-DUALMINE on the AANLIB training pairs of one task or all, with
//! a progress line per step (each loss term), checkpoints it can resume from, and the final
//! weights written atomically; `dualmine average-weights` averages fine-tunes of one start.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::pipeline::pet_ct_slices;
use super::progress::Progress;

use dualmine::fusion::fuser::{Backend, pick_device};
use dualmine::fusion::network::decoder::DEFAULT_DETAIL_GAIN;
use dualmine::fusion::network::local::LocalWeights;
use dualmine::fusion::network::model::DualMineConfig;
use dualmine::fusion::network::weights::{self, save};
use dualmine::fusion::shipped::CONFIG as LOCAL_CONFIG;
use dualmine::fusion::training::loss::LossWeights;
use dualmine::fusion::training::sampler::TrainingPair;
use dualmine::fusion::training::train::{TrainConfig, Trainer};
use dualmine::io::aanlib::{Split, Task, split_pairs};
use dualmine::io::image2d;
use dualmine::volume::Volume;
use dualmine::volume::colour::luminance;

/// The command's arguments.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// ct-mri, pet-mri, spect-mri, all (one model for the three benchmark tasks), or pet-ct
    /// (the slices of a PET/CT study folder, --studies).
    #[arg(long)]
    pub task: String,
    /// For --task pet-ct: a folder holding CT/ and PET/ of one session.
    #[arg(long, default_value = "../shared/data/dicom/sts/STS_001")]
    pub studies: PathBuf,
    /// The AANLIB folder (holds CT-MRI/, PET-MRI/, SPECT-MRI/).
    #[arg(long, default_value = "../shared/data/aanlib")]
    pub data: PathBuf,
    /// Where the trained weights go.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Checkpoint folder (written every --checkpoint-every steps and at the end).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Go on from the checkpoint (its own settings are used).
    #[arg(long)]
    pub resume: bool,
    /// Start the network from these weights (fine-tuning) instead of the untrained one.
    #[arg(long, conflicts_with = "resume")]
    pub init: Option<PathBuf>,
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    #[arg(long, default_value_t = 128)]
    pub crop: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Steps of linear learning-rate warm-up.
    #[arg(long, default_value_t = 100)]
    pub warmup: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// λ of L_avg, L_grad, L_cc, L_mi, L_rec and (optional) L_rel and L_ssim.
    #[arg(long, default_value = "1,10,1,0.1,1,0")]
    pub lambda: String,
    /// γ of the decoder's local term: how much of the trusted source's fine detail the
    /// fused image takes (0: none, the fusion is a per-image mix).
    #[arg(long, default_value_t = DEFAULT_DETAIL_GAIN)]
    pub detail_gain: f32,
    /// L_grad penalises F's gradients below this fraction of the stronger source's.
    #[arg(long, default_value_t = 0.7)]
    pub gradient_target: f32,
    #[arg(long, default_value = "tiny", value_parser = ["tiny", "tiny-local", "base"])]
    pub config: String,
    #[arg(long, default_value = "cpu", value_parser = ["auto", "gpu", "cpu"])]
    pub backend: String,
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: usize,
    /// Fuse the training images at this detail control d (the local part of a tiny-local
    /// network takes part when d > 0).
    #[arg(long, default_value_t = 0.0, value_parser = super::detail_value)]
    pub detail: f32,
    /// Train the local part alone (needs --config tiny-local and --detail above 0); the
    /// rest of the network stays as --init gave it.
    #[arg(long)]
    pub local_only: bool,
    /// With --detail and the whole network training: the λ (as --lambda) of the image at d;
    /// each step adds it to the loss of the image at d = 0.
    #[arg(long)]
    pub detail_lambda: Option<String>,
}

/// The training pairs of the chosen tasks (the validation split left out) as Y planes in
/// [0, 1].
pub fn training_pairs(data: &std::path::Path, tasks: &[Task]) -> Result<Vec<TrainingPair>> {
    let mut out = Vec::new();
    for &task in tasks {
        for pair in split_pairs(data, task, Split::Train)? {
            let a = image2d::read(&pair.a)?;
            let b = image2d::read(&pair.b)?;
            if a.geometry.dims != b.geometry.dims {
                bail!("{}: the two images differ in size", pair.name);
            }
            let [width, height, _] = a.geometry.dims;
            let (y_a, chroma) = luminance(&a.data, a.channels);
            let pair = TrainingPair {
                width,
                height,
                a: y_a,
                b: luminance(&b.data, b.channels).0,
                chroma: None,
            };
            out.push(match chroma {
                Some(chroma) => pair.with_chroma(&chroma),
                None => pair,
            });
        }
    }
    Ok(out)
}

/// The PET–CT slices of a study folder as training pairs (A = PET, B = CT, in [0, 1]).
pub fn pet_ct_training_pairs(folder: &std::path::Path) -> Result<Vec<TrainingPair>> {
    Ok(pet_ct_slices(folder)?
        .into_iter()
        .map(|pair| {
            let [width, height, _] = pair.a.geometry.dims;
            let unit = |v: &Volume| v.data.iter().map(|x| x / 255.0).collect();
            TrainingPair {
                width,
                height,
                a: unit(&pair.a),
                b: unit(&pair.b),
                chroma: None,
            }
        })
        .collect())
}

pub fn tasks_named(name: &str) -> Result<Vec<Task>> {
    if name.eq_ignore_ascii_case("all") {
        return Ok(Task::ALL.to_vec());
    }
    Task::parse(name)
        .map(|t| vec![t])
        .with_context(|| format!("unknown task {name:?} (ct-mri, pet-mri, spect-mri or all)"))
}

fn loss_weights(text: &str, gradient_target: f32) -> Result<LossWeights> {
    let values: Vec<f32> = text
        .split(',')
        .map(|v| v.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--lambda {text:?}: numbers separated by commas"))?;
    let (average, gradient, correlation, mutual_information, reconstruction) = match values[..] {
        [avg, grad, cc, mi, rec, ..] if values.len() <= 7 => (avg, grad, cc, mi, rec),
        _ => bail!(
            "--lambda needs five to seven numbers (avg, grad, cc, mi, rec[, rel[, ssim]]), got {}",
            values.len()
        ),
    };
    let (reliability, structure) = (
        values.get(5).copied().unwrap_or(0.0),
        values.get(6).copied().unwrap_or(0.0),
    );
    Ok(LossWeights {
        average,
        gradient,
        correlation,
        mutual_information,
        reconstruction,
        gradient_target,
        reliability,
        structure,
    })
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let backend = Backend::parse(&args.backend);
    let (device, description) = pick_device(backend)?;
    let data = if args.task.eq_ignore_ascii_case("pet-ct") {
        pet_ct_training_pairs(&args.studies)?
    } else {
        training_pairs(&args.data, &tasks_named(&args.task)?)?
    };
    if data.is_empty() {
        bail!("no training pairs for {}", args.task);
    }
    let mut trainer = if args.resume {
        Trainer::resume(&args.checkpoint, &device)?
    } else {
        let network = DualMineConfig::named(&args.config);
        let config = TrainConfig::new(network, loss_weights(&args.lambda, args.gradient_target)?)
            .with_steps(args.steps)
            .with_batch(args.batch)
            .with_crop(args.crop)
            .with_learning_rate(args.lr)
            .with_warmup(args.warmup)
            .with_seed(args.seed)
            .with_detail_gain(args.detail_gain)
            .with_detail(args.detail)
            .with_detail_loss(
                args.detail_lambda
                    .as_deref()
                    .map(|text| loss_weights(text, args.gradient_target))
                    .transpose()?,
            )
            .with_local_only(args.local_only);
        let mut trainer = Trainer::new(config, &device);
        if let Some(weights) = &args.init {
            trainer.start_from(weights)?;
        }
        trainer
    };
    let total = trainer.config.steps;
    eprintln!(
        "training {} on {} pairs ({}), {description}, from step {}",
        args.config,
        data.len(),
        args.task,
        trainer.step()
    );
    let mut progress = Progress::new("train", total, "steps", 10);
    progress.set(trainer.step(), "");
    while trainer.step() < total {
        let report = trainer.train_step(&data)?;
        let done = report.step;
        let line = format!(
            "loss {:.4} [avg {:.4} grad {:.4} cc {:.4} mi {:.3} rec {:.4} rel {:.4} ssim {:.4}] lr {:.1e} {:.2} s/step",
            report.total,
            report.average,
            report.gradient,
            report.correlation,
            report.mutual_information,
            report.reconstruction,
            report.reliability,
            report.structure,
            report.learning_rate,
            report.seconds,
        );
        progress.set(done, &line);
        if done % args.checkpoint_every == 0 || done == total {
            trainer.save_checkpoint(&args.checkpoint)?;
        }
    }
    progress.finish();
    let network = trainer.network();
    save(&network, &args.output)?;
    println!("wrote {}", args.output.display());
    if let Some(local) = network.local_weights() {
        println!("local part (k; τ; c; u): {}", local.spec());
    }
    Ok(())
}

/// The arguments of `dualmine average-weights`.
#[derive(clap::Args)]
pub struct AverageArgs {
    /// Weights files of one configuration, fine-tuned from the same start.
    #[arg(required = true, num_args = 2..)]
    pub inputs: Vec<PathBuf>,
    /// Where the averaged weights go.
    #[arg(short, long)]
    pub output: PathBuf,
    #[arg(long, default_value = "tiny", value_parser = ["tiny", "tiny-local", "base"])]
    pub config: String,
}

pub fn average(args: &AverageArgs) -> Result<()> {
    let (device, _) = pick_device(Backend::Cpu)?;
    let config = DualMineConfig::named(&args.config);
    let networks = args
        .inputs
        .iter()
        .map(|path| weights::load(&config, path, &device))
        .collect::<Result<Vec<_>, _>>()?;
    let averaged = weights::average(networks)
        .context("the weights files hold networks of different shapes")?;
    save(&averaged, &args.output)?;
    println!(
        "wrote {} (the average of {} networks)",
        args.output.display(),
        args.inputs.len()
    );
    Ok(())
}

/// The arguments of `dualmine set-local`.
#[derive(clap::Args)]
pub struct SetLocalArgs {
    /// Trained weights of the `tiny` configuration (or `tiny-local`, whose local part is
    /// replaced).
    pub input: PathBuf,
    /// The local part, `k0,k1,k2;τ0,τ1,τ2;c0,c1,c2;u` (`network::local`).
    #[arg(long)]
    pub local: String,
    /// Where the `tiny-local` weights go.
    #[arg(short, long)]
    pub output: PathBuf,
}

pub fn set_local(args: &SetLocalArgs) -> Result<()> {
    let (device, _) = pick_device(Backend::Cpu)?;
    let local = LocalWeights::parse(&args.local)
        .context("--local: k; τ; c (one number per scale each) and u (0 … 1)")?;
    let network = DualMineConfig::named(LOCAL_CONFIG).init(&device);
    let mut network = weights::load_into_extending(network, &args.input)?;
    let scales = network.scales();
    if local.intensity.len() != scales {
        bail!("--local: {scales} numbers per list, one per scale");
    }
    network.set_local_weights(&local);
    save(&network, &args.output)?;
    println!("wrote {} ({LOCAL_CONFIG})", args.output.display());
    Ok(())
}
