//! Running the network's CPU work in the background at a lower scheduling priority.
//!
//! The viewer fuses in the background on every core while the reader looks at slices; where
//! the drawing is done on the CPU too (Mesa's lavapipe), a fusion at the same priority takes
//! the cores the frames need. A thread that calls [`lower_this_thread`] yields to the
//! viewer's threads whenever they have work and runs at full speed when they do not.

/// The nice value background threads take (0 is the default; 19 the lowest priority).
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`BACKGROUND_NICE`] (a thread already
/// lower keeps its own). On Linux the nice value is a per-thread attribute; elsewhere this
/// does nothing. Returns whether the thread now runs at the background priority or lower.
pub fn lower_this_thread() -> bool {
    #[cfg(target_os = "linux")]
    {
        if this_thread_nice().is_some_and(|nice| nice >= BACKGROUND_NICE) {
            return true;
        }
        // SAFETY: `setpriority` only reads its integer arguments; `who` 0 is the calling
        // thread under Linux's per-thread nice values.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// The calling thread's nice value (Linux; `None` elsewhere or when it cannot be read).
pub fn this_thread_nice() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        // The 19th field of /proc/thread-self/stat, after the command name in parentheses.
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        let after_name = stat.rsplit_once(')')?.1;
        after_name.split_whitespace().nth(16)?.parse().ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lowered_thread_runs_at_the_background_nice_value_and_others_do_not() {
        let before = this_thread_nice();
        let lowered = std::thread::spawn(|| (lower_this_thread(), this_thread_nice()))
            .join()
            .expect("thread");
        if cfg!(target_os = "linux") {
            let (done, nice) = lowered;
            assert!(done);
            assert!(nice.is_some_and(|n| n >= BACKGROUND_NICE), "{nice:?}");
            // Only the thread that asked: this one keeps its value.
            assert_eq!(this_thread_nice(), before);
        } else {
            assert_eq!(lowered, (false, None));
        }
    }
}
