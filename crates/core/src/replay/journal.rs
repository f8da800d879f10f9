//! The replay journal (`--journal PATH`): what a replay has had accepted by Kinesis, so that
//! a rerun after an interruption sends only the rest.
//!
//! The file holds, per partition key, the position (sequence number and sub-sequence) of the
//! last record of that key that Kinesis accepted. The sender never sends a key's record
//! before the earlier ones of that key are accepted, so "accepted up to here" is one
//! position per key, and a rerun skips every record of the key at or before it.
//!
//! It also holds the selection and the target it was made for: a rerun with another
//! selection or target is refused, because skipping by the journal of another replay would
//! leave records out.
//!
//! Delivery: a replay is at-least-once across a crash between an accepted PutRecords and
//! the next journal write (those records are sent again on the rerun), and exactly-once
//! otherwise. The file is rewritten whole, atomically (a temporary file in the same
//! directory, flushed, then renamed over the old one), so a crash leaves either the old
//! journal or the new one, never half of one.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::sequence::SequenceNumber;
use crate::error::Error;

/// The position of a record within its key: sequence number, then sub-sequence (KPL user
/// records), compared numerically.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// The record's (or its container's) sequence number.
    pub sequence: SequenceNumber,
    /// A user record's index in its container.
    pub sub_sequence: Option<u64>,
}

/// The on-disk form: versioned JSON, readable by people checking a replay.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JournalFile {
    version: u32,
    selection: String,
    target: String,
    /// Partition key → `sequence` or `sequence.sub`.
    accepted: BTreeMap<String, String>,
}

const VERSION: u32 = 1;

/// A replay's journal, loaded or new.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    selection: String,
    target: String,
    accepted: BTreeMap<String, Position>,
    dirty: bool,
}

impl Journal {
    /// Opens the journal at `path` for a replay of `selection` into `target` (both as the
    /// replay describes them; equal texts mean the same replay). A missing file starts an
    /// empty journal; a file made for another selection or target is refused.
    pub fn open(path: &Path, selection: &str, target: &str) -> Result<Self, Error> {
        let mut journal = Journal {
            path: path.to_owned(),
            selection: selection.to_owned(),
            target: target.to_owned(),
            accepted: BTreeMap::new(),
            dirty: false,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(journal),
            Err(e) => return Err(journal_error(path, format!("cannot be read: {e}"))),
        };
        let file: JournalFile = serde_json::from_str(&text)
            .map_err(|e| journal_error(path, format!("is not a kinarch replay journal ({e})")))?;
        if file.version != VERSION {
            return Err(journal_error(
                path,
                format!("has version {}, this kinarch reads {VERSION}", file.version),
            ));
        }
        if file.selection != selection || file.target != target {
            return Err(journal_error(
                path,
                format!(
                    "was made for another replay ({} into {}), not {selection} into {target}; \
                     give another --journal path, or delete this one to start over",
                    file.selection, file.target
                ),
            ));
        }
        for (key, position) in file.accepted {
            let parsed = parse_position(&position).ok_or_else(|| {
                journal_error(path, format!("holds an invalid position {position:?}"))
            })?;
            journal.accepted.insert(key, parsed);
        }
        Ok(journal)
    }

    /// Whether a record at `position` of `partition_key` was accepted by an earlier run.
    pub fn already_sent(&self, partition_key: &str, position: &Position) -> bool {
        self.accepted
            .get(partition_key)
            .is_some_and(|last| position <= last)
    }

    /// Notes that Kinesis accepted the record at `position` of `partition_key`.
    pub fn accepted(&mut self, partition_key: &str, position: Position) {
        match self.accepted.get_mut(partition_key) {
            Some(last) if *last >= position => {}
            Some(last) => {
                *last = position;
                self.dirty = true;
            }
            None => {
                self.accepted.insert(partition_key.to_owned(), position);
                self.dirty = true;
            }
        }
    }

    /// Keys with at least one accepted record.
    pub fn keys(&self) -> usize {
        self.accepted.len()
    }

    /// Writes the journal when something changed since the last save: atomically, see the
    /// module documentation.
    pub fn save(&mut self) -> Result<(), Error> {
        if !self.dirty && self.path.exists() {
            return Ok(());
        }
        let file = JournalFile {
            version: VERSION,
            selection: self.selection.clone(),
            target: self.target.clone(),
            accepted: self
                .accepted
                .iter()
                .map(|(key, p)| (key.clone(), format_position(p)))
                .collect(),
        };
        let text = serde_json::to_vec_pretty(&file)
            .map_err(|e| journal_error(&self.path, format!("cannot be encoded: {e}")))?;
        let temporary = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut out = std::fs::File::create(&temporary)?;
            out.write_all(&text)?;
            out.sync_all()?;
            std::fs::rename(&temporary, &self.path)
        };
        write().map_err(|e| journal_error(&self.path, format!("cannot be written: {e}")))?;
        self.dirty = false;
        Ok(())
    }
}

fn journal_error(path: &Path, problem: String) -> Error {
    Error::InvalidInput(format!("the journal {} {problem}", path.display()))
}

fn format_position(p: &Position) -> String {
    match p.sub_sequence {
        None => p.sequence.as_str().to_owned(),
        Some(sub) => format!("{}.{sub}", p.sequence.as_str()),
    }
}

fn parse_position(text: &str) -> Option<Position> {
    let (sequence, sub) = match text.split_once('.') {
        None => (text, None),
        Some((sequence, sub)) => (sequence, Some(sub.parse().ok()?)),
    };
    Some(Position {
        sequence: SequenceNumber::parse(sequence).ok()?,
        sub_sequence: sub,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(sequence: &str, sub: Option<u64>) -> Position {
        Position {
            sequence: SequenceNumber::parse(sequence).unwrap(),
            sub_sequence: sub,
        }
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("kinarch-journal-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("replay.journal")
    }

    #[test]
    fn a_rerun_skips_what_was_accepted_per_key_numerically() {
        let path = temp_path("rerun");
        let _ = std::fs::remove_file(&path);
        let mut journal = Journal::open(&path, "table t, all", "stream s").unwrap();
        journal.accepted("a", at("9", None));
        journal.accepted("a", at("10", None));
        journal.accepted("a", at("8", None)); // an older acceptance never moves it back
        journal.accepted("b", at("5", Some(2)));
        journal.save().unwrap();

        let again = Journal::open(&path, "table t, all", "stream s").unwrap();
        assert_eq!(again.keys(), 2);
        assert!(again.already_sent("a", &at("9", None)));
        assert!(again.already_sent("a", &at("10", None)));
        assert!(!again.already_sent("a", &at("11", None)));
        assert!(!again.already_sent("a", &at("100", None)));
        assert!(again.already_sent("b", &at("5", Some(1))));
        assert!(!again.already_sent("b", &at("5", Some(3))));
        assert!(!again.already_sent("c", &at("1", None)));
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn a_journal_of_another_replay_or_no_journal_is_refused() {
        let path = temp_path("other");
        let mut journal = Journal::open(&path, "window 1", "stream s").unwrap();
        journal.accepted("a", at("1", None));
        journal.save().unwrap();
        let err = Journal::open(&path, "window 2", "stream s")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("another replay") && err.contains("window 1"),
            "{err}"
        );
        let err = Journal::open(&path, "window 1", "stream t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("another replay"), "{err}");
        std::fs::write(&path, "not json").unwrap();
        let err = Journal::open(&path, "window 1", "stream s")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a kinarch replay journal"), "{err}");
    }

    #[test]
    fn positions_round_trip() {
        for p in [
            at(
                "49590338271490256608559692538361571095921575989136588898",
                None,
            ),
            at("7", Some(0)),
            at("7", Some(19)),
        ] {
            assert_eq!(parse_position(&format_position(&p)), Some(p));
        }
        assert_eq!(parse_position("x"), None);
        assert_eq!(parse_position("1.x"), None);
    }
}
