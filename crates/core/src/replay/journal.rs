//! The replay journal (`--journal PATH`): what a replay has had accepted by Kinesis, so that
//! a rerun after an interruption sends only the rest.
//!
//! The file holds, per partition key, the position (sequence number and sub-sequence) of the
//! last record of that key that Kinesis accepted. The sender never sends a key's record
//! before the earlier ones of that key are accepted, so "accepted up to here" is one
//! position per key, and a rerun skips every record of the key at or before it.
//!
//! It also holds the replay it was made for, as a [`ReplayIdentity`]: the table, the
//! selection's fingerprint, the target and the framing, field by field in the words of the
//! command line. A rerun of another replay is refused, naming each field that differs,
//! because skipping by the journal of another replay would leave records out. A relative
//! time (`--arrived-after 30m`) names another instant on every run; given with the same
//! expression, the rerun reads the window the first run resolved (the very moment a
//! journal exists for) and says so.
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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The record's (or its container's) sequence number.
    pub sequence: SequenceNumber,
    /// A user record's index in its container.
    pub sub_sequence: Option<u64>,
}

/// What makes two runs the same replay, field by field in the words of the command line
/// (`--arrived-after` → `2026-05-01T10:00:00Z`, `--target` → `orders-replay`): the archive
/// table, the source stream, the selection's fingerprint
/// ([`Selection::fingerprint`](crate::domain::selection::Selection::fingerprint)), the
/// target and the framing. How fast it goes (rate, pace, concurrency) is not part of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayIdentity {
    /// Field → value, in the order the replay gives them.
    pub fields: Vec<(String, String)>,
    /// Time fields given as relative expressions (`--arrived-after` → `30m`): field → the
    /// expression as typed. A rerun with the same expression keeps the instant the first run
    /// resolved (see [`Journal::open`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub relative: BTreeMap<String, String>,
}

impl ReplayIdentity {
    /// The identity's one-line form: `kinarch-replay/2 --flag=value ...`.
    pub fn text(&self) -> String {
        let mut text = format!("kinarch-replay/{VERSION}");
        for (field, value) in &self.fields {
            text.push_str(&format!(" {field}={value}"));
        }
        text
    }

    fn value(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, v)| v.as_str())
    }

    /// The fields whose values differ, in the identity's order: (field, value in `self`,
    /// value in `other`).
    fn differences<'a>(
        &'a self,
        other: &'a ReplayIdentity,
    ) -> Vec<(&'a str, Option<&'a str>, Option<&'a str>)> {
        let mut names: Vec<&str> = self.fields.iter().map(|(f, _)| f.as_str()).collect();
        for (field, _) in &other.fields {
            if !names.contains(&field.as_str()) {
                names.push(field);
            }
        }
        names
            .into_iter()
            .map(|field| (field, self.value(field), other.value(field)))
            .filter(|(_, a, b)| a != b)
            .collect()
    }
}

/// The on-disk form: versioned JSON, readable by people checking a replay.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JournalFile {
    version: u32,
    /// [`ReplayIdentity::text`], for people.
    replay: String,
    identity: ReplayIdentity,
    /// Partition key → `sequence` or `sequence.sub`.
    accepted: BTreeMap<String, String>,
}

/// Only the version, to tell an old journal from a broken one.
#[derive(Debug, Deserialize)]
struct JournalVersion {
    version: u32,
}

/// The journal format this kinarch writes and reads. Version 1 (kinarch before the replay
/// identity) named the selection by a Rust debug text that no later release can compare.
const VERSION: u32 = 2;

/// A replay's journal, loaded or new.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    identity: ReplayIdentity,
    accepted: BTreeMap<String, Position>,
    dirty: bool,
    /// Whether the file was there when opened (an earlier run's).
    existed: bool,
}

/// What [`Journal::open`] adopted from an existing journal: relative time fields whose
/// expression is the first run's, with the instant the first run resolved (field, as typed,
/// the instant's value).
pub type AdoptedTimes = Vec<(String, String, String)>;

impl Journal {
    /// Opens the journal at `path` for the replay `identity`. A missing file starts an empty
    /// journal. An existing one must be of the same replay: every field equal, except that a
    /// relative time given with the same expression as in the first run (`--arrived-after
    /// 30m` both times) takes the instant the first run resolved, which is returned so that
    /// the caller reads that same window (and says so). Any other difference is refused with
    /// each differing field named, as it was given and as it is given now.
    pub fn open(path: &Path, identity: ReplayIdentity) -> Result<(Self, AdoptedTimes), Error> {
        let mut journal = Journal {
            path: path.to_owned(),
            identity,
            accepted: BTreeMap::new(),
            dirty: false,
            existed: false,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((journal, Vec::new())),
            Err(e) => return Err(journal_error(path, format!("cannot be read: {e}"))),
        };
        let not_a_journal = |e: serde_json::Error| {
            journal_error(path, format!("is not a kinarch replay journal ({e})"))
        };
        let version: JournalVersion = serde_json::from_str(&text).map_err(not_a_journal)?;
        if version.version != VERSION {
            return Err(journal_error(
                path,
                format!(
                    "has version {}, and this kinarch reads version {VERSION} only{}: give \
                     another --journal path, or delete this one to start over",
                    version.version,
                    if version.version < VERSION {
                        " (version 1 journals named their replay in a form no later release \
                         can compare; finish that replay with the kinarch that began it)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        let file: JournalFile = serde_json::from_str(&text).map_err(not_a_journal)?;
        journal.existed = true;
        let adopted = journal.adopt_relative_times(&file.identity);
        let differences = file.identity.differences(&journal.identity);
        if !differences.is_empty() {
            return Err(mismatch(
                path,
                &file.identity,
                &journal.identity,
                &differences,
            ));
        }
        for (key, position) in file.accepted {
            let parsed = parse_position(&position).ok_or_else(|| {
                journal_error(path, format!("holds an invalid position {position:?}"))
            })?;
            journal.accepted.insert(key, parsed);
        }
        Ok((journal, adopted))
    }

    /// Takes the first run's instant for each time field given now with the same relative
    /// expression as then.
    fn adopt_relative_times(&mut self, earlier: &ReplayIdentity) -> AdoptedTimes {
        let mut adopted = Vec::new();
        for (field, typed) in &self.identity.relative {
            if earlier.relative.get(field) != Some(typed) {
                continue;
            }
            let Some(then) = earlier.value(field) else {
                continue;
            };
            if let Some(slot) = self.identity.fields.iter_mut().find(|(f, _)| f == field)
                && slot.1 != then
            {
                slot.1 = then.to_owned();
                adopted.push((field.clone(), typed.clone(), then.to_owned()));
            }
        }
        adopted
    }

    /// Where the journal is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether an earlier run had written it (else this run starts it).
    pub fn existed(&self) -> bool {
        self.existed
    }

    /// The replay this journal is of.
    pub fn identity(&self) -> &ReplayIdentity {
        &self.identity
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
            replay: self.identity.text(),
            identity: self.identity.clone(),
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

/// The refusal of a journal of another replay: each differing field, as the journal has it
/// and as it is given now.
fn mismatch(
    path: &Path,
    then: &ReplayIdentity,
    now: &ReplayIdentity,
    differences: &[(&str, Option<&str>, Option<&str>)],
) -> Error {
    let shown = |value: Option<&str>| value.unwrap_or("not given").to_owned();
    let fields: Vec<String> = differences
        .iter()
        .map(|(field, a, b)| format!("{field} {} in the journal, {} now", shown(*a), shown(*b)))
        .collect();
    let mut relative = Vec::new();
    for (field, _, _) in differences {
        for (side, identity) in [("the journal's run", then), ("this run", now)] {
            if let Some(typed) = identity.relative.get(*field) {
                relative.push(format!("{field} {typed} in {side}"));
            }
        }
    }
    let why_relative = match relative.is_empty() {
        true => String::new(),
        false => format!(
            " ({} relative: a relative time keeps the instant of the journal's first run only \
             when it is given with the same expression)",
            relative.join(", ")
        ),
    };
    journal_error(
        path,
        format!(
            "was made for another replay: {}{why_relative}. Give the same options as the run \
             that made it, another --journal path, or delete it to start over",
            fields.join("; ")
        ),
    )
}

fn journal_error(path: &Path, problem: String) -> Error {
    Error::InvalidInput(format!("the journal {} {problem}", path.display()))
}

pub(crate) fn format_position(p: &Position) -> String {
    match p.sub_sequence {
        None => p.sequence.as_str().to_owned(),
        Some(sub) => format!("{}.{sub}", p.sequence.as_str()),
    }
}

pub(crate) fn parse_position(text: &str) -> Option<Position> {
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

    fn identity(fields: &[(&str, &str)], relative: &[(&str, &str)]) -> ReplayIdentity {
        ReplayIdentity {
            fields: fields
                .iter()
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect(),
            relative: relative
                .iter()
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_rerun_skips_what_was_accepted_per_key_numerically() {
        let path = temp_path("rerun");
        let _ = std::fs::remove_file(&path);
        let replay = identity(&[("--table", "t"), ("--target", "s")], &[]);
        let (mut journal, _) = Journal::open(&path, replay.clone()).unwrap();
        journal.accepted("a", at("9", None));
        journal.accepted("a", at("10", None));
        journal.accepted("a", at("8", None)); // an older acceptance never moves it back
        journal.accepted("b", at("5", Some(2)));
        journal.save().unwrap();

        let (again, adopted) = Journal::open(&path, replay).unwrap();
        assert!(adopted.is_empty());
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
    fn a_journal_of_another_replay_is_refused_naming_each_field_that_differs() {
        let path = temp_path("other");
        let _ = std::fs::remove_file(&path);
        let first = identity(
            &[
                ("--table", "t"),
                ("--arrived-after", "2026-05-01T10:00:00Z"),
                ("--target", "s"),
            ],
            &[],
        );
        let (mut journal, _) = Journal::open(&path, first).unwrap();
        journal.accepted("a", at("1", None));
        journal.save().unwrap();
        let other = identity(
            &[
                ("--table", "t"),
                ("--arrived-after", "2026-05-01T11:00:00Z"),
                ("--target", "u"),
                ("--limit", "5"),
            ],
            &[],
        );
        let err = Journal::open(&path, other).unwrap_err().to_string();
        assert!(
            err.contains(
                "was made for another replay: --arrived-after 2026-05-01T10:00:00Z in the \
                 journal, 2026-05-01T11:00:00Z now; --target s in the journal, u now; --limit \
                 not given in the journal, 5 now"
            ),
            "{err}"
        );
        assert!(err.len() < 400, "short enough to read: {err}");
        std::fs::write(&path, "not json").unwrap();
        let err = Journal::open(&path, identity(&[], &[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a kinarch replay journal"), "{err}");
        // A journal of kinarch before the identity: refused, saying why.
        std::fs::write(
            &path,
            r#"{"version": 1, "selection": "Scan(ScanOptions { .. })", "target": "s", "accepted": {}}"#,
        )
        .unwrap();
        let err = Journal::open(&path, identity(&[], &[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("has version 1") && err.contains("version 1 journals"),
            "{err}"
        );
    }

    #[test]
    fn a_relative_time_keeps_the_first_runs_instant_when_given_the_same_way() {
        let path = temp_path("relative");
        let _ = std::fs::remove_file(&path);
        let run = |instant: &str, typed: &str| {
            identity(
                &[("--table", "t"), ("--arrived-after", instant)],
                &[("--arrived-after", typed)],
            )
        };
        let (mut journal, _) = Journal::open(&path, run("2026-05-01T10:00:00Z", "30m")).unwrap();
        journal.accepted("a", at("1", None));
        journal.save().unwrap();
        // Ten minutes later, "30m" names another instant: the first run's is kept.
        let (again, adopted) = Journal::open(&path, run("2026-05-01T10:10:00Z", "30m")).unwrap();
        assert_eq!(
            adopted,
            [(
                "--arrived-after".to_owned(),
                "30m".to_owned(),
                "2026-05-01T10:00:00Z".to_owned()
            )]
        );
        assert_eq!(
            again.identity().value("--arrived-after"),
            Some("2026-05-01T10:00:00Z")
        );
        assert!(again.already_sent("a", &at("1", None)));
        // Another expression is another selection, and the refusal says why.
        let err = Journal::open(&path, run("2026-05-01T09:40:00Z", "40m"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--arrived-after 30m in the journal's run")
                && err.contains("--arrived-after 40m in this run"),
            "{err}"
        );
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
