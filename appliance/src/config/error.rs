//! Configuration errors at a position of the file (`file:line:col: message`) and the
//! helpers that turn a span of the TOML text into one.

use std::fmt;
use std::ops::Range;

/// A configuration error at a position in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.msg)
    }
}

impl std::error::Error for ConfigError {}

/// Builds a positioned error from a span of the config text.
pub type ErrAt<'a> = &'a dyn Fn(Range<usize>, String) -> ConfigError;

/// The file being validated: turns spans into positioned errors.
pub struct Pos<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Pos<'_> {
    pub fn err(&self, span: Range<usize>, msg: impl Into<String>) -> ConfigError {
        let (line, col) = line_col(self.text, span.start);
        ConfigError {
            file: self.file.to_string(),
            line,
            col,
            msg: msg.into(),
        }
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, col)
}

/// An error with no position (a value given at run time, e.g. by a control command).
pub fn no_pos(_: Range<usize>, msg: String) -> ConfigError {
    ConfigError {
        file: String::new(),
        line: 0,
        col: 0,
        msg,
    }
}
