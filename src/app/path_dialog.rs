//! Choosing files and folders: the desktop's dialog (rfd, through the XDG desktop portal or
//! zenity) where one can open; where none can, the app says so in its window and takes the
//! path typed into a field instead, so that a machine without a desktop portal (a server
//! under X forwarding, a minimal install) can still open, save and export.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::Color32;

use super::ViewerApp;

/// What a path is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// One or two study folders to open.
    OpenStudies,
    /// Where to save the session.
    SaveSession,
    /// A session file to open.
    OpenSession,
    /// Where to save the registration's transform.
    SaveTransform,
    /// A transform file to load.
    LoadTransform,
}

impl Purpose {
    /// The field's prompt.
    fn prompt(self) -> &'static str {
        match self {
            Self::OpenStudies => "Study folders to open (one or two, separated by ';')",
            Self::SaveSession => "File to save the session to (.json)",
            Self::OpenSession => "Session file to open (.json)",
            Self::SaveTransform => "File to save the transform to (.txt)",
            Self::LoadTransform => "Transform file to load (.txt)",
        }
    }

    /// The dialog's title.
    fn title(self) -> &'static str {
        match self {
            Self::OpenStudies => "Open one or two studies (DICOM folders)",
            Self::SaveSession => "Save session",
            Self::OpenSession => "Open session",
            Self::SaveTransform => "Save transform",
            Self::LoadTransform => "Load transform",
        }
    }

    /// The desktop dialog for this purpose, with its filters and default name.
    fn dialog(self) -> rfd::FileDialog {
        let dialog = rfd::FileDialog::new().set_title(self.title());
        match self {
            Self::SaveSession | Self::OpenSession => dialog
                .add_filter("dualmine session", &["json"])
                .set_file_name("session.json"),
            Self::SaveTransform => dialog.set_file_name("transform.txt"),
            Self::OpenStudies | Self::LoadTransform => dialog,
        }
    }
}

/// What the desktop's dialog gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Picked {
    Paths(Vec<PathBuf>),
    /// The user closed the dialog without choosing.
    Cancelled,
    /// No dialog could be shown.
    Unavailable,
}

/// A dialog closed sooner than this was not seen by anyone: it could not open (rfd returns
/// nothing then, as for a cancel, and only logs why).
const NO_DIALOG_WITHIN: Duration = Duration::from_millis(250);

/// Whether a desktop file dialog can open at all: a D-Bus session bus (for the XDG portal)
/// or zenity on the PATH.
pub fn desktop_dialog_possible() -> bool {
    let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty())
        || std::env::var_os("XDG_RUNTIME_DIR")
            .is_some_and(|dir| Path::new(&dir).join("bus").exists());
    let zenity = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("zenity").is_file()));
    bus || zenity
}

/// The desktop's dialog for `purpose`, or why there is none.
pub fn pick(purpose: Purpose) -> Picked {
    let dialog = purpose.dialog();
    shown(|| match purpose {
        Purpose::OpenStudies => dialog.pick_folders(),
        Purpose::SaveSession | Purpose::SaveTransform => dialog.save_file().map(|p| vec![p]),
        Purpose::OpenSession | Purpose::LoadTransform => dialog.pick_file().map(|p| vec![p]),
    })
}

/// `dialog` asked where to save a file, or why it could not ask.
pub fn save_file(dialog: rfd::FileDialog) -> Picked {
    shown(|| dialog.save_file().map(|p| vec![p]))
}

/// `dialog` asked for a folder, or why it could not ask.
pub fn pick_folder(dialog: rfd::FileDialog) -> Picked {
    shown(|| dialog.pick_folder().map(|p| vec![p]))
}

/// What `show` (a desktop dialog) gave: no dialog at all where none can open, and none either
/// when it returned nothing sooner than anyone could have closed it.
fn shown(show: impl FnOnce() -> Option<Vec<PathBuf>>) -> Picked {
    if !desktop_dialog_possible() {
        return Picked::Unavailable;
    }
    let asked = Instant::now();
    match show() {
        Some(paths) => Picked::Paths(paths),
        None if asked.elapsed() < NO_DIALOG_WITHIN => Picked::Unavailable,
        None => Picked::Cancelled,
    }
}

/// The in-app stand-in for a desktop dialog that could not open.
#[derive(Debug)]
pub struct PathPrompt {
    pub purpose: Purpose,
    pub text: String,
}

/// What the user did with the prompt this frame.
enum PromptAction {
    Keep,
    Close,
    Use(Vec<PathBuf>),
}

/// The paths typed into the field: one, or for studies up to two separated by ';'.
fn typed_paths(purpose: Purpose, text: &str) -> Vec<PathBuf> {
    let parts: Vec<&str> = match purpose {
        Purpose::OpenStudies => text.split(';').collect(),
        _ => vec![text],
    };
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// The message shown when no desktop dialog opened.
pub const NO_DIALOG: &str = "No file dialog could open on this desktop (it needs the XDG \
     desktop portal or zenity): type the path instead.";

impl ViewerApp {
    /// Asks for a path for `purpose`: the desktop's dialog, or the in-app prompt when none
    /// can open. Returns the paths chosen now, if any.
    pub(super) fn ask_path(&mut self, purpose: Purpose) -> Option<Vec<PathBuf>> {
        let picked = if self.desktop_dialogs {
            pick(purpose)
        } else {
            Picked::Unavailable
        };
        match picked {
            Picked::Paths(paths) => Some(paths),
            Picked::Cancelled => None,
            Picked::Unavailable => {
                self.path_prompt = Some(PathPrompt {
                    purpose,
                    text: String::new(),
                });
                None
            }
        }
    }

    /// The in-app prompt, when one is open; hands the typed paths to what asked for them.
    pub(super) fn path_prompt_window(&mut self, ctx: &egui::Context) {
        let Some(prompt) = &mut self.path_prompt else {
            return;
        };
        let mut action = PromptAction::Keep;
        egui::Window::new(prompt.purpose.title())
            .collapsible(false)
            .show(ctx, |ui| {
                ui.colored_label(Color32::from_rgb(255, 200, 80), NO_DIALOG);
                let label = ui.label(prompt.purpose.prompt());
                let field = ui
                    .add(egui::TextEdit::singleline(&mut prompt.text).desired_width(420.0))
                    .labelled_by(label.id);
                let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                ui.horizontal(|ui| {
                    let paths = typed_paths(prompt.purpose, &prompt.text);
                    let ok = ui.add_enabled(!paths.is_empty(), egui::Button::new("OK"));
                    if (ok.clicked() || entered) && !paths.is_empty() {
                        action = PromptAction::Use(paths);
                    }
                    if ui.button("Cancel").clicked() {
                        action = PromptAction::Close;
                    }
                });
            });
        let purpose = prompt.purpose;
        match action {
            PromptAction::Keep => {}
            PromptAction::Close => self.path_prompt = None,
            PromptAction::Use(paths) => {
                self.path_prompt = None;
                self.use_paths(purpose, paths);
            }
        }
    }

    /// Does what `purpose` asked the paths for.
    pub(super) fn use_paths(&mut self, purpose: Purpose, paths: Vec<PathBuf>) {
        let Some(first) = paths.first().cloned() else {
            return;
        };
        match purpose {
            Purpose::OpenStudies => {
                let sources = paths.into_iter().take(2).map(super::Source::Path).collect();
                self.open(sources);
            }
            Purpose::SaveSession => {
                if let Err(e) = self.save_session(&first) {
                    self.error = Some(e);
                }
            }
            Purpose::OpenSession => {
                if let Err(e) = self.open_session(&first) {
                    self.error = Some(e);
                }
            }
            Purpose::SaveTransform => self.write_transform(&first),
            Purpose::LoadTransform => self.read_transform(&first),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_paths_split_studies_only() {
        assert_eq!(
            typed_paths(Purpose::OpenStudies, " /a/ct ; /b/pet ;"),
            [PathBuf::from("/a/ct"), PathBuf::from("/b/pet")]
        );
        assert_eq!(
            typed_paths(Purpose::SaveSession, "/x;y.json"),
            [PathBuf::from("/x;y.json")]
        );
        assert!(typed_paths(Purpose::OpenSession, "  ").is_empty());
    }
}
