//! The PACS panel (key P): pick a node, search studies, list a study's series, retrieve a
//! study or one series into the cache (progress bar, Cancel) and open it as a dropped folder
//! would be opened; the cache's size and Clear; and the sending of exported series (the
//! export dialog's "Send to PACS"). Every network operation runs on its own thread, one at a
//! time, so the viewer keeps drawing.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use egui::Color32;

use crate::pacs::{
    Cache, CachedStudy, Level, Match, Node, Query, RetrieveProgress, RetrieveRequest, Settings,
    StoreOutcome, Watch, connect,
};

/// What a finished network job brought.
enum Outcome {
    Echo(Result<Duration, String>),
    Studies(Result<Vec<Match>, String>),
    Series(Result<Vec<Match>, String>),
    Retrieved(Result<CachedStudy, String>),
    Sent(Result<StoreOutcome, String>),
}

/// The network job under way.
struct Job {
    what: String,
    events: Receiver<Outcome>,
    progress: Arc<Mutex<RetrieveProgress>>,
    cancel: Arc<AtomicBool>,
}

/// The search fields.
#[derive(Default, Clone)]
pub struct SearchForm {
    pub patient_name: String,
    pub patient_id: String,
    pub date: String,
    pub modality: String,
    pub accession: String,
}

/// The panel's state.
pub struct PacsPanel {
    pub open: bool,
    settings: Settings,
    settings_path: Option<PathBuf>,
    cache: Cache,
    /// Index of the chosen node in `settings.nodes`.
    pub node: usize,
    pub form: SearchForm,
    pub studies: Vec<Match>,
    pub selected: Option<usize>,
    pub series: Vec<Match>,
    /// What the last job said (success or failure).
    pub message: Option<Result<String, String>>,
    job: Option<Job>,
    new_node: (String, String),
    cache_size: Option<u64>,
}

impl PacsPanel {
    /// The user's nodes (settings file) and cache folder.
    pub fn from_user_settings() -> Self {
        let path = Settings::default_path();
        let (settings, message) = match Settings::load(&path) {
            Ok(settings) => (settings, None),
            Err(e) => (Settings::default(), Some(Err(e.to_string()))),
        };
        let mut panel = Self::new(settings, Cache::user_default());
        panel.settings_path = Some(path);
        panel.message = message;
        panel
    }

    /// A panel on given settings and cache (nothing saved back).
    pub fn new(settings: Settings, cache: Cache) -> Self {
        Self {
            open: false,
            settings,
            settings_path: None,
            cache,
            node: 0,
            form: SearchForm::default(),
            studies: Vec::new(),
            selected: None,
            series: Vec::new(),
            message: None,
            job: None,
            new_node: Default::default(),
            cache_size: None,
        }
    }

    pub fn nodes(&self) -> &[Node] {
        &self.settings.nodes
    }

    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    fn chosen_node(&self) -> Option<Node> {
        self.settings.nodes.get(self.node).cloned()
    }

    /// Runs `work` on a thread against the chosen node.
    fn start(
        &mut self,
        what: &str,
        work: impl FnOnce(&Node, &Settings, &Mutex<RetrieveProgress>, &AtomicBool) -> Outcome
        + Send
        + 'static,
    ) {
        let Some(node) = self.chosen_node() else {
            self.message = Some(Err("add a PACS node first".into()));
            return;
        };
        let settings = self.settings.clone();
        let (sender, events) = channel();
        let progress = Arc::new(Mutex::new(RetrieveProgress::default()));
        let cancel = Arc::new(AtomicBool::new(false));
        let (thread_progress, thread_cancel) = (progress.clone(), cancel.clone());
        let spawned = std::thread::Builder::new()
            .name("pacs".into())
            .spawn(move || {
                let _ = sender.send(work(&node, &settings, &thread_progress, &thread_cancel));
            });
        match spawned {
            Ok(_) => {
                self.message = None;
                self.job = Some(Job {
                    what: what.to_string(),
                    events,
                    progress,
                    cancel,
                });
            }
            Err(e) => self.message = Some(Err(format!("cannot start {what}: {e}"))),
        }
    }

    pub fn echo(&mut self) {
        self.start("echo", |node, settings, _, _| {
            Outcome::Echo(connect(node, settings).echo().map_err(|e| e.to_string()))
        });
    }

    pub fn search(&mut self) {
        let form = self.form.clone();
        self.studies.clear();
        self.series.clear();
        self.selected = None;
        self.start("search", move |node, settings, _, _| {
            let query = Query {
                patient_name: form.patient_name.trim().to_string(),
                patient_id: form.patient_id.trim().to_string(),
                study_date: form.date.trim().to_string(),
                modality: form.modality.trim().to_string(),
                accession: form.accession.trim().to_string(),
                ..Query::default()
            };
            Outcome::Studies(
                connect(node, settings)
                    .find(&query)
                    .map_err(|e| e.to_string()),
            )
        });
    }

    /// Selects study `index` and lists its series.
    pub fn select(&mut self, index: usize) {
        let Some(study) = self.studies.get(index) else {
            return;
        };
        self.selected = Some(index);
        self.series.clear();
        let study_uid = study.study_uid.clone();
        self.start("series search", move |node, settings, _, _| {
            let query = Query {
                level: Level::Series,
                study_uid,
                ..Query::default()
            };
            Outcome::Series(
                connect(node, settings)
                    .find(&query)
                    .map_err(|e| e.to_string()),
            )
        });
    }

    /// Retrieves the selected study, or its series `series` (index into `self.series`).
    pub fn retrieve(&mut self, series: Option<usize>) {
        let Some(study) = self.selected.and_then(|i| self.studies.get(i)) else {
            return;
        };
        let request = RetrieveRequest {
            study_uid: study.study_uid.clone(),
            series_uid: series
                .and_then(|i| self.series.get(i))
                .map(|s| s.series_uid.clone()),
        };
        let cache = self.cache.clone();
        self.start("retrieve", move |node, settings, progress, cancel| {
            let transport = connect(node, settings);
            let mut report = |p: RetrieveProgress| {
                if let Ok(mut shared) = progress.lock() {
                    *shared = p;
                }
            };
            let result = cache.retrieve(
                transport.as_ref(),
                &request,
                &mut Watch {
                    progress: &mut report,
                    cancel,
                },
            );
            Outcome::Retrieved(result.map_err(|e| e.to_string()))
        });
    }

    /// Sends `files` (an exported derived series) to the chosen node.
    pub fn send(&mut self, files: Vec<PathBuf>) {
        self.start("send", move |node, settings, progress, _| {
            let total = files.len();
            let mut report = |done: usize| {
                if let Ok(mut shared) = progress.lock() {
                    *shared = RetrieveProgress {
                        received: done,
                        expected: Some(total),
                        bytes: 0,
                    };
                }
            };
            Outcome::Sent(
                connect(node, settings)
                    .store(&files, &mut report)
                    .map_err(|e| e.to_string()),
            )
        });
    }

    pub fn cancel(&self) {
        if let Some(job) = &self.job {
            job.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Takes a finished job's outcome; returns a retrieved folder to open.
    pub fn poll(&mut self) -> Option<PathBuf> {
        let job = self.job.as_ref()?;
        let outcome = match job.events.try_recv() {
            Ok(outcome) => outcome,
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::Disconnected) => {
                let what = job.what.clone();
                self.job = None;
                self.message = Some(Err(format!("the {what} thread stopped")));
                return None;
            }
        };
        self.job = None;
        let mut open = None;
        self.message = Some(match outcome {
            Outcome::Echo(result) => {
                result.map(|took| format!("answered in {:.0} ms", took.as_secs_f64() * 1e3))
            }
            Outcome::Studies(result) => result.map(|found| {
                let count = found.len();
                self.studies = found;
                format!("{count} stud{}", if count == 1 { "y" } else { "ies" })
            }),
            Outcome::Series(result) => result.map(|mut found| {
                let count = found.len();
                // In series-number order, as a reading list shows them.
                found.sort_by_key(|s| {
                    (
                        s.series_number.parse::<i64>().unwrap_or(i64::MAX),
                        s.series_uid.clone(),
                    )
                });
                self.series = found;
                format!("{count} series")
            }),
            Outcome::Retrieved(result) => result.map(|cached| {
                self.cache_size = None;
                open = Some(cached.folder.clone());
                let mut text = if cached.reused {
                    "opened from the cache".to_string()
                } else {
                    format!(
                        "retrieved {} instance(s), {:.1} MB",
                        cached.outcome.instances,
                        cached.outcome.bytes as f64 / 1e6
                    )
                };
                for warning in &cached.outcome.warnings {
                    text += &format!("; {warning}");
                }
                text
            }),
            Outcome::Sent(result) => result.map(|sent| format!("sent {} instance(s)", sent.stored)),
        });
        open
    }

    fn add_node(&mut self) {
        let (name, address) = (
            self.new_node.0.trim().to_string(),
            self.new_node.1.trim().to_string(),
        );
        match Node::parse(&name, &address) {
            Ok(node) if !name.is_empty() => {
                self.settings.upsert(node);
                self.node = self.settings.nodes.len() - 1;
                self.new_node = Default::default();
                if let Some(path) = &self.settings_path
                    && let Err(e) = self.settings.save(path)
                {
                    self.message = Some(Err(e.to_string()));
                }
            }
            Ok(_) => self.message = Some(Err("give the node a name".into())),
            Err(e) => self.message = Some(Err(e)),
        }
    }

    /// The node picker (shared with the export dialog's "Send to PACS").
    pub fn node_picker(&mut self, ui: &mut egui::Ui) {
        let names: Vec<String> = self.settings.nodes.iter().map(Node::label).collect();
        let shown = names
            .get(self.node)
            .cloned()
            .unwrap_or_else(|| "no node".into());
        egui::ComboBox::from_label("node")
            .selected_text(shown)
            .show_ui(ui, |ui| {
                for (index, name) in names.iter().enumerate() {
                    ui.selectable_value(&mut self.node, index, name);
                }
            });
    }

    /// The running job's progress bar and Cancel, or the last job's message.
    pub fn job_line(&mut self, ui: &mut egui::Ui) {
        if let Some(job) = &self.job {
            let progress = job.progress.lock().map(|p| *p).unwrap_or_default();
            ui.horizontal(|ui| {
                if job.what == "retrieve" || job.what == "send" {
                    let fraction = match progress.expected {
                        Some(total) if total > 0 => progress.received as f32 / total as f32,
                        _ => 0.0,
                    };
                    ui.add(
                        egui::ProgressBar::new(fraction)
                            .desired_width(220.0)
                            .text(format!(
                                "{}: {} instance(s), {:.1} MB",
                                job.what,
                                progress.received,
                                progress.bytes as f64 / 1e6
                            )),
                    );
                    if job.what == "retrieve" && ui.button("Cancel").clicked() {
                        job.cancel.store(true, Ordering::Relaxed);
                    }
                } else {
                    ui.spinner();
                    ui.label(format!("{}…", job.what));
                }
            });
        } else if let Some(message) = &self.message {
            match message {
                Ok(text) => ui.label(text),
                Err(text) => ui.colored_label(Color32::LIGHT_RED, text),
            };
        }
    }
}

/// Draws the panel (when open); returns a retrieved folder to open.
pub fn show(ctx: &egui::Context, panel: &mut PacsPanel) -> Option<PathBuf> {
    let opened = panel.poll();
    if panel.is_busy() {
        ctx.request_repaint_after(Duration::from_millis(50));
    }
    if !panel.open {
        return opened;
    }
    let mut open = panel.open;
    egui::Window::new("PACS")
        .open(&mut open)
        .default_width(620.0)
        .show(ctx, |ui| {
            let idle = !panel.is_busy();
            ui.horizontal(|ui| {
                panel.node_picker(ui);
                if ui.add_enabled(idle, egui::Button::new("Echo")).clicked() {
                    panel.echo();
                }
            });
            ui.collapsing("Add a node", |ui| {
                ui.horizontal(|ui| {
                    ui.add(
                        egui::TextEdit::singleline(&mut panel.new_node.0)
                            .hint_text("name")
                            .desired_width(90.0),
                    );
                    ui.add(
                        egui::TextEdit::singleline(&mut panel.new_node.1)
                            .hint_text("AE@host:port or https://…/dicom-web")
                            .desired_width(260.0),
                    );
                    if ui.button("Add").clicked() {
                        panel.add_node();
                    }
                });
            });
            search_form(ui, panel, idle);
            ui.separator();
            results(ui, panel, idle);
            ui.separator();
            panel.job_line(ui);
            ui.horizontal(|ui| {
                let size = *panel.cache_size.get_or_insert_with(|| panel.cache.size());
                ui.small(format!(
                    "cache: {:.1} MB in {}",
                    size as f64 / 1e6,
                    panel.cache.root().display()
                ));
                if ui
                    .add_enabled(idle, egui::Button::new("Clear cache"))
                    .clicked()
                {
                    if let Err(e) = panel.cache.clear() {
                        panel.message = Some(Err(e.to_string()));
                    }
                    panel.cache_size = None;
                }
            });
        });
    panel.open = open;
    opened
}

fn search_form(ui: &mut egui::Ui, panel: &mut PacsPanel, idle: bool) {
    egui::Grid::new("pacs search")
        .num_columns(4)
        .show(ui, |ui| {
            let field = |ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str| {
                let label = ui.label(label);
                ui.add_sized(
                    [150.0, 20.0],
                    egui::TextEdit::singleline(value).hint_text(hint),
                )
                .labelled_by(label.id);
            };
            field(ui, "patient name", &mut panel.form.patient_name, "DOE^J*");
            field(ui, "patient ID", &mut panel.form.patient_id, "");
            ui.end_row();
            field(ui, "study date", &mut panel.form.date, "20260101-20261231");
            field(ui, "modality", &mut panel.form.modality, "CT, MR, PT, NM");
            ui.end_row();
            field(ui, "accession", &mut panel.form.accession, "");
            ui.label("");
            if ui.add_enabled(idle, egui::Button::new("Search")).clicked() {
                panel.search();
            }
            ui.end_row();
        });
}

fn results(ui: &mut egui::Ui, panel: &mut PacsPanel, idle: bool) {
    let mut select = None;
    let mut open_study = None;
    egui::ScrollArea::vertical()
        .id_salt("pacs studies")
        .max_height(160.0)
        .show(ui, |ui| {
            egui::Grid::new("pacs studies grid")
                .striped(true)
                .show(ui, |ui| {
                    for heading in [
                        "patient",
                        "ID",
                        "date",
                        "modalities",
                        "description",
                        "series",
                    ] {
                        ui.strong(heading);
                    }
                    ui.end_row();
                    for (index, study) in panel.studies.iter().enumerate() {
                        let chosen = panel.selected == Some(index);
                        let row = ui
                            .selectable_label(chosen, &study.patient_name)
                            .on_hover_text("click: list its series; double-click: open the study");
                        if row.double_clicked() {
                            open_study = Some(index);
                        } else if row.clicked() {
                            select = Some(index);
                        }
                        ui.label(&study.patient_id);
                        ui.label(&study.study_date);
                        ui.label(&study.modality);
                        ui.label(&study.description);
                        ui.label(study.series_count.map_or("-".into(), |n| n.to_string()));
                        ui.end_row();
                    }
                });
        });
    if let Some(index) = select
        && idle
    {
        panel.select(index);
    }
    if let Some(index) = open_study
        && idle
    {
        panel.selected = Some(index);
        panel.series.clear();
        panel.retrieve(None);
    }
    if panel.selected.is_none() {
        return;
    }
    let mut retrieve = None;
    egui::ScrollArea::vertical()
        .id_salt("pacs series")
        .max_height(180.0)
        .show(ui, |ui| {
            egui::Grid::new("pacs series grid")
                .striped(true)
                .show(ui, |ui| {
                    for heading in ["series", "modality", "description", "instances", ""] {
                        ui.strong(heading);
                    }
                    ui.end_row();
                    for (index, series) in panel.series.iter().enumerate() {
                        ui.label(&series.series_number);
                        ui.label(&series.modality);
                        ui.label(&series.description);
                        ui.label(series.instance_count.map_or("-".into(), |n| n.to_string()));
                        if ui
                            .add_enabled(
                                idle,
                                egui::Button::new(format!("Open series {}", series.series_number)),
                            )
                            .clicked()
                        {
                            retrieve = Some(Some(index));
                        }
                        ui.end_row();
                    }
                });
        });
    if ui
        .add_enabled(idle, egui::Button::new("Open study"))
        .clicked()
    {
        retrieve = Some(None);
    }
    if let Some(series) = retrieve {
        panel.retrieve(series);
    }
}
