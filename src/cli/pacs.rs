//! `dualmine pacs …`: the configured nodes (`node add|list|remove`, `config`), and echo, find,
//! get and send against one of them (a configured name, or an address given directly:
//! `AE@host:port` for DICOM networking, an `http(s)://` base URL for DICOMweb); `cache` shows
//! or clears the cache of retrieved studies.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use super::pipeline::{PacsTarget, TlsArgs, dicom_files_under, send_to_pacs};
use super::progress::Progress;
use dualmine::pacs::dimse::{DimseClient, Method};
use dualmine::pacs::{
    Cache, Endpoint, Level, Match, Node, Query, RetrieveRequest, Settings, Transport, Watch,
};

#[derive(Args)]
pub struct PacsArgs {
    #[command(subcommand)]
    command: PacsCommand,
}

#[derive(Subcommand)]
enum PacsCommand {
    /// Verify a node answers (C-ECHO, or a QIDO-RS request for DICOMweb).
    Echo {
        #[command(flatten)]
        target: PacsTarget,
    },
    /// Search studies (or, with --series-of, the series of one study).
    Find(FindArgs),
    /// Retrieve a study (or one series) into the cache and print its folder.
    Get {
        #[command(flatten)]
        target: PacsTarget,
        /// StudyInstanceUID of the study.
        study: String,
        /// Only this series (SeriesInstanceUID).
        #[arg(long)]
        series: Option<String>,
        /// Retrieve by C-MOVE to our storage SCP (port from `pacs config --move-port`) even
        /// where the server offers C-GET.
        #[arg(long)]
        r#move: bool,
        /// Retrieve again even when the cache holds the study.
        #[arg(long)]
        refresh: bool,
    },
    /// Send DICOM files (or every file under folders) to a node (C-STORE or STOW-RS).
    Send {
        #[command(flatten)]
        target: PacsTarget,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Configured nodes.
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Our own AE title, the timeout and the C-MOVE port (printed when given nothing).
    Config {
        #[arg(long)]
        ae_title: Option<String>,
        /// Seconds to wait for a connection or the next message.
        #[arg(long)]
        timeout: Option<u64>,
        /// Port our storage SCP listens on during a C-MOVE.
        #[arg(long)]
        move_port: Option<u16>,
    },
    /// Size of the cache of retrieved studies; --clear empties it.
    Cache {
        #[arg(long)]
        clear: bool,
    },
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Add (or replace) a node: `AE@host:port`, or a DICOMweb base URL.
    Add {
        name: String,
        address: String,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// List the nodes.
    List,
    /// Remove a node.
    Remove { name: String },
}

#[derive(Args)]
struct FindArgs {
    #[command(flatten)]
    target: PacsTarget,
    /// Patient name (wildcards * and ?).
    #[arg(long)]
    patient_name: Option<String>,
    #[arg(long)]
    patient_id: Option<String>,
    /// Study date or range: YYYYMMDD, YYYYMMDD-YYYYMMDD, -YYYYMMDD, YYYYMMDD-.
    #[arg(long)]
    date: Option<String>,
    /// Modality (CT, MR, PT, NM …).
    #[arg(long)]
    modality: Option<String>,
    #[arg(long)]
    accession: Option<String>,
    /// List the series of this study (StudyInstanceUID) instead of studies.
    #[arg(long, value_name = "STUDY_UID")]
    series_of: Option<String>,
    /// Stop after this many matches.
    #[arg(long, default_value_t = 500)]
    max: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `dualmine pacs …`.
pub fn run(args: &PacsArgs) -> Result<()> {
    let settings_path = Settings::default_path();
    match &args.command {
        PacsCommand::Echo { target } => {
            let (node, settings) = target.resolve()?;
            let took = dualmine::pacs::connect(&node, &settings).echo()?;
            println!(
                "{} answered in {:.1} ms",
                node.label(),
                took.as_secs_f64() * 1e3
            );
        }
        PacsCommand::Find(find) => run_find(find)?,
        PacsCommand::Get {
            target,
            study,
            series,
            r#move,
            refresh,
        } => run_get(target, study, series.as_deref(), *r#move, *refresh)?,
        PacsCommand::Send { target, paths } => {
            let mut files = Vec::new();
            for path in paths {
                files.extend(dicom_files_under(path)?);
            }
            send_to_pacs(target, &files)?;
        }
        PacsCommand::Node { command } => run_node(command, &settings_path)?,
        PacsCommand::Config {
            ae_title,
            timeout,
            move_port,
        } => run_config(ae_title.as_deref(), *timeout, *move_port, &settings_path)?,
        PacsCommand::Cache { clear } => run_cache(*clear)?,
    }
    Ok(())
}

/// `dualmine pacs get`: a study (or one series) into the cache, with progress.
fn run_get(
    target: &PacsTarget,
    study: &str,
    series: Option<&str>,
    r#move: bool,
    refresh: bool,
) -> Result<()> {
    let (node, settings) = target.resolve()?;
    let transport: Box<dyn Transport> = match (&node.endpoint, r#move) {
        (Endpoint::Dimse { .. }, true) => {
            Box::new(DimseClient::new(node.clone(), &settings).with_method(Method::Move))
        }
        (Endpoint::DicomWeb { .. }, true) => bail!("--move is for DICOM networking nodes"),
        _ => dualmine::pacs::connect(&node, &settings),
    };
    let request = RetrieveRequest {
        study_uid: study.to_string(),
        series_uid: series.map(str::to_string),
    };
    let cache = Cache::user_default();
    if refresh {
        let folder = cache.folder_of(&request);
        if folder.exists() {
            std::fs::remove_dir_all(&folder)
                .with_context(|| format!("clearing {}", folder.display()))?;
        }
    }
    let mut bar = Progress::new("retrieve", 0, "instances", 25);
    let cancel = AtomicBool::new(false);
    let mut report = |p: dualmine::pacs::RetrieveProgress| {
        bar.report(p.received, p.expected.unwrap_or(p.received));
    };
    let cached = cache.retrieve(
        transport.as_ref(),
        &request,
        &mut Watch {
            progress: &mut report,
            cancel: &cancel,
        },
    )?;
    bar.finish();
    for warning in &cached.outcome.warnings {
        eprintln!("warning: {warning}");
    }
    if cached.reused {
        println!("in the cache: {}", cached.folder.display());
    } else {
        println!(
            "retrieved {} instance(s), {:.1} MB, into {}",
            cached.outcome.instances,
            cached.outcome.bytes as f64 / 1e6,
            cached.folder.display()
        );
    }
    Ok(())
}

/// `dualmine pacs node add | list | remove`.
fn run_node(command: &NodeCommand, settings_path: &Path) -> Result<()> {
    let mut settings = Settings::load(settings_path)?;
    match command {
        NodeCommand::Add { name, address, tls } => {
            let node = tls.apply(Node::parse(name, address).map_err(anyhow::Error::msg)?);
            println!("{}", node.label());
            settings.upsert(node);
            settings.save(settings_path)?;
        }
        NodeCommand::List => {
            for node in &settings.nodes {
                println!("{}", node.label());
            }
        }
        NodeCommand::Remove { name } => {
            settings.node(name)?;
            settings.nodes.retain(|n| &n.name != name);
            settings.save(settings_path)?;
        }
    }
    Ok(())
}

/// `dualmine pacs config`: changes the settings given, then prints them.
fn run_config(
    ae_title: Option<&str>,
    timeout: Option<u64>,
    move_port: Option<u16>,
    settings_path: &Path,
) -> Result<()> {
    let mut settings = Settings::load(settings_path)?;
    if let Some(title) = ae_title {
        dualmine::pacs::node::check_ae_title(title).map_err(anyhow::Error::msg)?;
        settings.ae_title = title.to_string();
    }
    if let Some(seconds) = timeout {
        settings.timeout_s = seconds;
    }
    if let Some(port) = move_port {
        settings.move_port = port;
    }
    if ae_title.is_some() || timeout.is_some() || move_port.is_some() {
        settings.save(settings_path)?;
    }
    println!(
        "AE title {}, timeout {} s, C-MOVE port {} ({})",
        settings.ae_title,
        settings.timeout_s,
        settings.move_port,
        settings_path.display()
    );
    Ok(())
}

/// `dualmine pacs cache [--clear]`: the cache's size, or clears it.
fn run_cache(clear: bool) -> Result<()> {
    let cache = Cache::user_default();
    if clear {
        let freed = cache.clear()?;
        println!(
            "cleared {} ({:.1} MB)",
            cache.root().display(),
            freed as f64 / 1e6
        );
    } else {
        println!(
            "{}: {:.1} MB",
            cache.root().display(),
            cache.size() as f64 / 1e6
        );
    }
    Ok(())
}

fn run_find(find: &FindArgs) -> Result<()> {
    let (node, settings) = find.target.resolve()?;
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let query = Query {
        level: if find.series_of.is_some() {
            Level::Series
        } else {
            Level::Study
        },
        patient_name: text(&find.patient_name),
        patient_id: text(&find.patient_id),
        study_date: text(&find.date),
        modality: text(&find.modality),
        accession: text(&find.accession),
        study_uid: text(&find.series_of),
        max_results: find.max,
    };
    let found = dualmine::pacs::connect(&node, &settings).find(&query)?;
    if find.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(());
    }
    print_table(query.level, &found);
    if found.len() == query.max_results {
        eprintln!(
            "(stopped at {} matches: narrow the search or raise --max)",
            query.max_results
        );
    }
    Ok(())
}

fn print_table(level: Level, found: &[Match]) {
    let count = |n: Option<u32>| n.map_or("-".to_string(), |n| n.to_string());
    match level {
        Level::Study => {
            println!("patient\tid\tdate\tmodalities\tdescription\tseries\tinstances\tstudy UID");
            for m in found {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    m.patient_name,
                    m.patient_id,
                    m.study_date,
                    m.modality,
                    m.description,
                    count(m.series_count),
                    count(m.instance_count),
                    m.study_uid
                );
            }
        }
        Level::Series => {
            println!("number\tmodality\tdescription\tinstances\tseries UID");
            for m in found {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    m.series_number,
                    m.modality,
                    m.description,
                    count(m.instance_count),
                    m.series_uid
                );
            }
        }
    }
}
