//! How the command line ends: errors that carry their exit code, and an error's text
//! with each cause said once.

/// An error that carries its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Exit {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Exit {
    /// The exit code of bad configuration or usage.
    pub(crate) const USAGE: u8 = 2;

    /// Exit code 1: the command ran and failed.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Exit {
            code: 1,
            message: message.into(),
        }
    }

    /// Exit code 2: bad configuration or usage.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Exit {
            code: Exit::USAGE,
            message: message.into(),
        }
    }
}

/// An error and its causes on one line, each said once: many of our errors already name
/// their cause in their own text, and anyhow's `{:#}` would repeat it.
pub(crate) fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

pub(crate) fn config_problems(errors: idsync::config::ConfigErrors) -> anyhow::Error {
    anyhow::Error::new(Exit::usage(format!(
        "the configuration has {} problem(s):\n{errors}",
        errors.0.len()
    )))
}
