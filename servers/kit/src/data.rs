//! Reading a dataset file: JSON errors that name the file, the line and the
//! path to the bad field.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Largest dataset file accepted, in bytes.
pub(crate) const DATA_FILE_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// A dataset file that cannot be loaded. Nothing from it was loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataFileError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {size} bytes is over the {DATA_FILE_BYTES_MAX}-byte limit", path.display())]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{}:{line}:{column}: at `{field}`: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        /// Path to the offending value, e.g. `users[3].email`.
        field: String,
        message: String,
    },
    /// A record parsed but breaks a rule of the dataset.
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// Reads and parses `path` as `T`.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, DataFileError> {
    let read_error = |source| DataFileError::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > DATA_FILE_BYTES_MAX {
        return Err(DataFileError::TooLarge {
            path: path.to_owned(),
            size,
        });
    }
    let text = std::fs::read(path).map_err(read_error)?;
    parse_json(path, &text)
}

/// Parses `text` (the contents of `path`) as `T`.
pub(crate) fn parse_json<T: DeserializeOwned>(
    path: &Path,
    text: &[u8],
) -> Result<T, DataFileError> {
    let parse_error = |field: String, inner: serde_json::Error| DataFileError::Parse {
        path: path.to_owned(),
        line: inner.line(),
        column: inner.column(),
        field,
        message: strip_position(&inner.to_string()),
    };
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|error| parse_error(error.path().to_string(), error.into_inner()))?;
    de.end()
        .map_err(|error| parse_error(".".to_owned(), error))?;
    Ok(value)
}

/// serde_json appends " at line L column C"; the error shows those already.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct File {
        users: Vec<User>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct User {
        id: String,
    }

    #[test]
    fn parse_error_names_file_line_and_field() {
        let text = b"{\"users\": [\n {\"id\": \"a\"},\n {\"id\": 5}\n]}";
        let error = parse_json::<File>(Path::new("d.json"), text).unwrap_err();
        assert_eq!(
            error.to_string(),
            "d.json:3:9: at `users[1].id`: invalid type: integer `5`, expected a string"
        );
    }

    #[test]
    fn unknown_field_and_trailing_garbage_are_rejected() {
        let error = parse_json::<File>(Path::new("d.json"), br#"{"users": [], "x": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `x`"), "{error}");
        let error = parse_json::<File>(Path::new("d.json"), br#"{"users": []} {}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("trailing characters"), "{error}");
    }
}
