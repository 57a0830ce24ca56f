//! The store crate's error type.

/// A failure of a database operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database cannot be reached or has no free connection: try again later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A unique constraint was violated; the constraint's name says which.
    #[error("unique constraint {constraint} violated")]
    Duplicate { constraint: String },
    /// PostgreSQL refused a value the request supplied (SQLSTATE class 22, data exception:
    /// an invalid regular expression, a NUL character, a number out of range…): what was
    /// wrong, in our words (the server's text can name internals).
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    /// PostgreSQL stopped the statement at its time-out (SQLSTATE 57014).
    #[error("the statement ran past its time-out")]
    TimedOut,
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        let error = Error::classify(e);
        // What a request got wrong is not a database error.
        let kind = match &error {
            Error::Unavailable(_) => Some("unavailable"),
            Error::TimedOut => Some("timed_out"),
            Error::Internal(_) => Some("internal"),
            _ => None,
        };
        if let Some(kind) = kind {
            saltant_telemetry::metrics::metrics()
                .postgres_errors
                .get_or_create(&saltant_telemetry::metrics::KindLabels { kind })
                .inc();
        }
        error
    }
}

impl Error {
    fn classify(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Error::Unavailable(e)
            }
            sqlx::Error::Database(db) => {
                if db.is_unique_violation() {
                    return Error::Duplicate {
                        constraint: db.constraint().unwrap_or_default().to_owned(),
                    };
                }
                // Class 57 (operator intervention: shutdown, cannot connect now) and 08
                // (connection exception) mean the server is going away or starting.
                let code = db.code().unwrap_or_default();
                if code == "57014" {
                    return Error::TimedOut;
                }
                if code.starts_with("57") || code.starts_with("08") {
                    return Error::Unavailable(e);
                }
                if code.starts_with("22") {
                    return Error::InvalidInput(match code.as_ref() {
                        "2201B" => "invalid regular expression",
                        "22021" | "22P05" => "a character that cannot be stored (NUL)",
                        "22003" => "a number out of range",
                        "22007" | "22008" => "an invalid date or time",
                        _ => "a value the database cannot take",
                    });
                }
                Error::Internal(anyhow::Error::new(e))
            }
            _ => Error::Internal(anyhow::Error::new(e)),
        }
    }
}
