//! One error type for the whole crate. Every variant names the thing that was wrong
//! (file + field + byte offset, tensor, flag) so that a user can act on the message.

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// A model file is malformed. `offset` is the byte offset of the field when known.
    Format {
        file: String,
        field: String,
        offset: Option<u64>,
        msg: String,
    },
    /// A tensor is unusable (wrong size for its dtype and shape, unsupported type, ...).
    Tensor {
        file: String,
        tensor: String,
        msg: String,
    },
    /// An I/O error on a path.
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Bad command-line input or a request the program cannot serve.
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn format(file: &str, field: &str, offset: u64, msg: impl Into<String>) -> Error {
        Error::Format {
            file: file.to_string(),
            field: field.to_string(),
            offset: Some(offset),
            msg: msg.into(),
        }
    }

    pub fn meta(file: &str, field: &str, msg: impl Into<String>) -> Error {
        Error::Format {
            file: file.to_string(),
            field: field.to_string(),
            offset: None,
            msg: msg.into(),
        }
    }

    pub fn tensor(file: &str, tensor: &str, msg: impl Into<String>) -> Error {
        Error::Tensor {
            file: file.to_string(),
            tensor: tensor.to_string(),
            msg: msg.into(),
        }
    }

    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::Invalid(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Format {
                file,
                field,
                offset: Some(off),
                msg,
            } => write!(f, "{file}: field `{field}` at byte offset {off}: {msg}"),
            Error::Format {
                file,
                field,
                offset: None,
                msg,
            } => write!(f, "{file}: field `{field}`: {msg}"),
            Error::Tensor { file, tensor, msg } => write!(f, "{file}: tensor `{tensor}`: {msg}"),
            Error::Io { path, source } => write!(f, "{path}: {source}"),
            Error::Invalid(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
