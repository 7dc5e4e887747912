//! Error kinds, their stable codes, and the process exit codes they map to.

use std::fmt;
use std::path::PathBuf;

use super::reason::Reason;

/// Exit codes, a documented contract for schedulers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Every job has its asset.
    Success = 0,
    /// Internal error.
    Internal = 1,
    /// Invalid input or usage; nothing sent or written.
    InvalidInput = 2,
    /// Finished with some jobs failed or blocked; the manifest lists them.
    PartialFailure = 3,
    /// Refused or aborted for a run-level reason (budget, auth, quota, model).
    RunRefused = 4,
}

impl ExitCode {
    /// The numeric code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// One problem in the user's input, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// What is wrong and, where we can tell, how to fix it.
    pub message: String,
}

impl InputProblem {
    /// A problem with a file as a whole.
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        InputProblem {
            file: file.into(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// A problem at a line (and optionally a column).
    pub fn at(
        file: impl Into<PathBuf>,
        line: u64,
        column: Option<u64>,
        message: impl Into<String>,
    ) -> Self {
        InputProblem {
            file: file.into(),
            line: Some(line),
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found while loading and validating input. Validation keeps
/// going after the first problem so a user fixes them all in one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputErrors(pub Vec<InputProblem>);

impl InputErrors {
    /// Add a problem.
    pub fn push(&mut self, p: InputProblem) {
        self.0.push(p);
    }
    /// True when nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// `Ok(())` when empty, otherwise the errors.
    pub fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Input(self))
        }
    }
}

impl fmt::Display for InputErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {p}")?;
        }
        Ok(())
    }
}

/// The library's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad campaign input (exit 2).
    #[error("{0}")]
    Input(InputErrors),
    /// Bad command-line usage (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The estimate exceeds the budget (exit 4).
    #[error(
        "estimated cost ${estimate:.4} exceeds the budget ${budget:.4} ({source_of_budget}); nothing was sent"
    )]
    OverBudget {
        /// Estimated USD.
        estimate: f64,
        /// Budget USD.
        budget: f64,
        /// Where the budget came from.
        source_of_budget: String,
    },
    /// A provider failure that ends the run (exit 4).
    #[error("run stopped: {reason}: {detail}")]
    RunTerminal {
        /// Why, in the shared vocabulary.
        reason: Reason,
        /// What happened, for a person.
        detail: String,
    },
    /// State database failure.
    #[error("state database {location}: {message}")]
    Db {
        /// The state file, or the database URL with its password redacted.
        location: String,
        /// The cause as text, scrubbed of any password the URL carries.
        message: String,
        /// The cause.
        #[source]
        source: sqlx::Error,
    },
    /// Migration failure.
    #[error("state database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// File system failure with the path involved.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Publishing the output to a bucket failed (an object could not be
    /// put, or did not read back with its sha256). The message names the
    /// object and never a credential.
    #[error("upload failed: {0}")]
    Upload(String),
    /// Anything else that is our fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The exit code this error maps to.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Input(_) | Error::Usage(_) => ExitCode::InvalidInput,
            Error::OverBudget { .. } | Error::RunTerminal { .. } => ExitCode::RunRefused,
            Error::Db { .. }
            | Error::Migrate(_)
            | Error::Io { .. }
            | Error::Upload(_)
            | Error::Internal(_) => ExitCode::Internal,
        }
    }

    /// The reason code of this error (the `code` of the JSON error object).
    pub fn reason(&self) -> Reason {
        match self {
            Error::Input(_) | Error::Usage(_) => Reason::InvalidInput,
            Error::OverBudget { .. } => Reason::OverBudget,
            Error::RunTerminal { reason, .. } => *reason,
            Error::Io { .. } => Reason::IoError,
            Error::Upload(_) => Reason::UploadFailed,
            Error::Db { .. } | Error::Migrate(_) | Error::Internal(_) => Reason::InternalError,
        }
    }

    /// A run-terminal error.
    pub fn run_terminal(reason: Reason, detail: impl Into<String>) -> Self {
        Error::RunTerminal {
            reason,
            detail: detail.into(),
        }
    }

    /// Wrap an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(source: sqlx::Error) -> Self {
        Error::Db {
            location: "(unknown)".into(),
            message: source.to_string(),
            source,
        }
    }
}

/// Library result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
