//! What a plugin writes with `host.log` during one call: each line goes to
//! the host's log, tagged with the element and instance, within a per-call
//! budget of lines and bytes (a plugin logging in a loop cannot flood the
//! log; the lines dropped are counted and reported once when the call
//! ends), and the last error-level lines are kept so that a call that traps
//! can say why — the templates log a panic's message or an uncaught
//! exception at error level before the guest aborts.

use std::collections::VecDeque;

use super::bindings::LogLevel;

/// Longest log line a plugin may write; longer lines are cut.
const MAX_LOG_LINE: usize = 4096;
/// Most lines one call may write to the host's log.
const MAX_LINES_PER_CALL: u32 = 200;
/// Most bytes (of messages) one call may write to the host's log.
const MAX_BYTES_PER_CALL: usize = 64 << 10;
/// Error-level lines kept for a failing call's error.
const KEPT_ERROR_LINES: usize = 3;
/// Longest text of kept error lines added to a call's error.
const MAX_KEPT_ERROR_TEXT: usize = 2048;

/// Who a call is for, for the log lines: the element key and the instance.
pub(crate) type Who<'a> = (&'a str, Option<i64>);

/// One call's log budget and its last error-level lines.
#[derive(Debug, Default)]
pub(crate) struct CallLog {
    lines: u32,
    bytes: usize,
    dropped: u32,
    errors: VecDeque<String>,
}

impl CallLog {
    /// Writes one plugin line to the host's log, unless the call's budget
    /// is spent (then it is counted as dropped). Error-level lines are
    /// kept, dropped or not, for [`Self::last_errors`].
    pub(crate) fn write(&mut self, who: Who<'_>, level: LogLevel, message: String) {
        let message = cut(message, MAX_LOG_LINE);
        if level == LogLevel::Error {
            if self.errors.len() == KEPT_ERROR_LINES {
                self.errors.pop_front();
            }
            self.errors.push_back(message.clone());
        }
        if self.lines >= MAX_LINES_PER_CALL || self.bytes + message.len() > MAX_BYTES_PER_CALL {
            self.dropped += 1;
            return;
        }
        self.lines += 1;
        self.bytes += message.len();
        let (element, instance) = who;
        match level {
            LogLevel::Trace => tracing::trace!(element, instance, plugin = true, "{message}"),
            LogLevel::Debug => tracing::debug!(element, instance, plugin = true, "{message}"),
            LogLevel::Info => tracing::info!(element, instance, plugin = true, "{message}"),
            LogLevel::Warn => tracing::warn!(element, instance, plugin = true, "{message}"),
            LogLevel::Error => tracing::error!(element, instance, plugin = true, "{message}"),
        }
    }

    /// The call's last error-level lines, oldest first, joined with `; `
    /// and cut to a bounded length; `None` if it wrote none.
    pub(crate) fn last_errors(&self) -> Option<String> {
        if self.errors.is_empty() {
            return None;
        }
        let joined = self.errors.iter().cloned().collect::<Vec<_>>().join("; ");
        Some(cut(joined, MAX_KEPT_ERROR_TEXT))
    }

    /// Ends the call: logs how many lines its budget dropped, if any, and
    /// starts a fresh budget (a warm instance's next call gets its own).
    pub(crate) fn finish(&mut self, (element, instance): Who<'_>) {
        if self.dropped > 0 {
            tracing::warn!(
                element,
                instance,
                plugin = true,
                dropped = self.dropped,
                "the plugin wrote more than {MAX_LINES_PER_CALL} lines or {MAX_BYTES_PER_CALL} \
                 bytes of log in one call; {} further lines were dropped",
                self.dropped
            );
        }
        *self = Self::default();
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut at = max;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_error_lines_are_kept_in_order() {
        let mut log = CallLog::default();
        let label = ("", None);
        assert_eq!(log.last_errors(), None);
        for n in 0..5 {
            log.write(label, LogLevel::Error, format!("error {n}"));
            log.write(label, LogLevel::Info, format!("info {n}"));
        }
        assert_eq!(
            log.last_errors().as_deref(),
            Some("error 2; error 3; error 4")
        );
        log.finish(label);
        assert_eq!(log.last_errors(), None);
    }

    #[test]
    fn lines_beyond_the_budget_are_counted_not_written() {
        let mut log = CallLog::default();
        let label = ("", None);
        for _ in 0..MAX_LINES_PER_CALL + 7 {
            log.write(label, LogLevel::Debug, "x".into());
        }
        assert_eq!((log.lines, log.dropped), (MAX_LINES_PER_CALL, 7));
        let mut bytes = CallLog::default();
        let big = "é".repeat(MAX_LOG_LINE);
        for _ in 0..MAX_BYTES_PER_CALL / MAX_LOG_LINE + 3 {
            bytes.write(label, LogLevel::Debug, big.clone());
        }
        assert!(bytes.bytes <= MAX_BYTES_PER_CALL);
        assert_eq!(bytes.dropped, 3);
        // An error line past the budget is still kept for the call's error.
        bytes.write(label, LogLevel::Error, "panic: boom".into());
        assert_eq!(bytes.last_errors().as_deref(), Some("panic: boom"));
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let cut_text = cut("aé".repeat(3000), MAX_LOG_LINE);
        assert!(cut_text.len() <= MAX_LOG_LINE);
        assert!(cut_text.is_char_boundary(cut_text.len()));
    }
}
