//! The results table: one row per figure, with its target and whether it was met.

use std::fmt::Write as _;

use serde_json::{Value, json};

/// How a figure compares with its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The target is met.
    Met,
    /// The target is missed.
    Missed,
    /// A figure to report, with no target.
    Info,
}

impl Verdict {
    /// `Met` when `ok`, else `Missed`.
    pub fn check(ok: bool) -> Verdict {
        if ok { Verdict::Met } else { Verdict::Missed }
    }

    fn text(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "MISSED",
            Verdict::Info => "",
        }
    }
}

/// One measured figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Which group of scenarios (`null endpoint`, `moto`, `criterion`, ...).
    pub section: String,
    /// What was measured.
    pub figure: String,
    /// The target, or empty.
    pub target: String,
    /// The measurement: a median with spread, or a count.
    pub result: String,
    /// Target met or missed.
    pub verdict: Verdict,
    /// Details (breakdown of requests, units, caveats).
    pub note: String,
}

/// All rows of a run, and the machine they were measured on.
#[derive(Debug, Default)]
pub struct Report {
    /// Facts about the machine (`nproc`, CPU model, load).
    pub machine: Vec<(String, String)>,
    /// The figures, in the order measured.
    pub rows: Vec<Row>,
}

/// Escapes `|` for a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

impl Report {
    /// Adds a row and prints it at once, so a long run shows progress.
    pub fn add(
        &mut self,
        section: &str,
        figure: impl Into<String>,
        target: impl Into<String>,
        result: impl Into<String>,
        verdict: Verdict,
        note: impl Into<String>,
    ) {
        let row = Row {
            section: section.to_owned(),
            figure: figure.into(),
            target: target.into(),
            result: result.into(),
            verdict,
            note: note.into(),
        };
        eprintln!(
            "  {}: {} = {} {}{}",
            row.section,
            row.figure,
            row.result,
            row.verdict.text(),
            if row.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", row.note)
            }
        );
        self.rows.push(row);
    }

    /// The machine facts and the table, as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.machine {
            let _ = writeln!(out, "- {k}: {v}");
        }
        out.push('\n');
        out.push_str("| section | figure | target | result | verdict | note |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                cell(&r.section),
                cell(&r.figure),
                cell(&r.target),
                cell(&r.result),
                r.verdict.text(),
                cell(&r.note)
            );
        }
        out
    }

    /// Everything as JSON.
    pub fn json(&self) -> Value {
        json!({
            "machine": self.machine.iter().map(|(k, v)| json!({"fact": k, "value": v})).collect::<Vec<_>>(),
            "rows": self.rows.iter().map(|r| json!({
                "section": r.section,
                "figure": r.figure,
                "target": r.target,
                "result": r.result,
                "verdict": r.verdict.text(),
                "note": r.note,
            })).collect::<Vec<_>>(),
        })
    }

    /// Targets missed.
    pub fn missed(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Missed)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes_cells_and_marks_misses() {
        let mut report = Report::default();
        report.add("s", "a|b", "40", "41", Verdict::Missed, "");
        let md = report.markdown();
        assert!(md.contains("a\\|b") && md.contains("MISSED"), "{md}");
        assert_eq!(report.missed(), 1);
    }
}
