//! Notes a signed-in user keeps for themselves.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{Invalid, check_text};

/// A note's text: trimmed, 1 to 2,000 characters, line breaks allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteBody(String);

impl NoteBody {
    pub const MAX_CHARS: usize = 2_000;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let body = raw.trim();
        if body.is_empty() {
            return Err(Invalid("write something first".into()));
        }
        if body.chars().count() > Self::MAX_CHARS {
            return Err(Invalid(format!(
                "a note has at most {} characters",
                Self::MAX_CHARS
            )));
        }
        check_text(body, true)?;
        Ok(Self(body.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A note as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub id: Uuid,
    pub user_id: Uuid,
    pub body: String,
    pub created_at: DateTime<Utc>,
}
