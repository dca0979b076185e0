//! The `dualmine` binary: the command line of `cli`, errors printed with their causes.

mod cli;

/// mimalloc instead of the system allocator: the network's CPU path allocates and frees
/// many large tensors per slice, and glibc's malloc maps and unmaps each one (page faults
/// and zeroing every time); measured on the `tiny` 256² pair, 7 % faster (README).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    private_runtime_dir();
    ProbeQuietLogger::install();
    match cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", with_causes(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose text a message
/// before it already quotes (many of our errors name their I/O cause themselves).
fn with_causes(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.is_empty() {
            text = cause;
        } else if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

/// `env_logger` (RUST_LOG, errors only by default), less what wgpu and the graphics drivers
/// log while the program probes for a GPU: on a machine without one, EGL and DRI say so at
/// error level ("failed to load driver"), which is the answer the probe was asking for and
/// not a fault. Outside probes everything is logged as configured.
struct ProbeQuietLogger {
    inner: env_logger::Logger,
}

impl ProbeQuietLogger {
    fn install() {
        let inner =
            env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("error"))
                .build();
        let level = inner.filter();
        if log::set_boxed_logger(Box::new(Self { inner })).is_ok() {
            log::set_max_level(level);
        }
    }

    fn is_probe_noise(metadata: &log::Metadata<'_>) -> bool {
        #[cfg(feature = "fusion")]
        {
            let target = metadata.target();
            dualmine::fusion::fuser::probing_gpu()
                && (target.starts_with("wgpu") || target.starts_with("naga"))
        }
        #[cfg(not(feature = "fusion"))]
        {
            let _ = metadata;
            false
        }
    }
}

impl log::Log for ProbeQuietLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        !Self::is_probe_noise(metadata) && self.inner.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !Self::is_probe_noise(record.metadata()) {
            self.inner.log(record);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Without a desktop session (a server, ssh, CI) `XDG_RUNTIME_DIR` is unset, and probing for
/// a GPU makes the Wayland client library in Mesa's drivers print "XDG_RUNTIME_DIR is invalid
/// or not set" once per probe — noise, since nothing is wrong. Give the process a private
/// runtime folder then (mode 0700, in the temporary folder, one per user), as a login session
/// would; with one already set this does nothing. The variable is set by running this program
/// again in place of itself with it in the environment (`exec`: same process, arguments and
/// streams), which changing the environment of a running process cannot do soundly; if that
/// fails the program goes on without it.
fn private_runtime_dir() {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        use std::os::unix::process::CommandExt;
        let valid = std::env::var_os("XDG_RUNTIME_DIR")
            .is_some_and(|dir| std::path::Path::new(&dir).is_dir());
        if valid {
            return;
        }
        let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
            return;
        };
        let dir = std::env::temp_dir().join(format!("dualmine-runtime-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        // Use it only when it is ours and private (someone else may have made the name).
        let ours = std::fs::symlink_metadata(&dir)
            .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0);
        let Ok(program) = std::env::current_exe() else {
            return;
        };
        if ours {
            let mut args = std::env::args_os();
            let mut command = std::process::Command::new(program);
            if let Some(name) = args.next() {
                command.arg0(name);
            }
            // Returns only when the program could not be started again.
            let _ = command.args(args).env("XDG_RUNTIME_DIR", &dir).exec();
        }
    }
}
