//! Questions asked on a terminal: the question goes to standard error (standard output is
//! for results), the answer is one line of standard input.

use std::io::{self, BufRead, Write};

/// How many times a question is asked again after an answer that is not valid.
const ATTEMPTS: usize = 5;

/// Asks questions on `output` and reads answers from `input`.
pub(crate) struct Prompter<R, W> {
    input: R,
    output: W,
}

impl Prompter<io::StdinLock<'static>, io::Stderr> {
    /// Questions on standard error, answers from standard input.
    pub(crate) fn stdio() -> Self {
        Self::new(io::stdin().lock(), io::stderr())
    }
}

impl<R: BufRead, W: Write> Prompter<R, W> {
    /// A prompter on any reader and writer (tests use in-memory ones).
    pub(crate) fn new(input: R, output: W) -> Self {
        Self { input, output }
    }

    /// The writer back, with everything asked on it.
    #[cfg(test)]
    pub(crate) fn into_output(self) -> W {
        self.output
    }

    /// Prints a line of information.
    pub(crate) fn tell(&mut self, text: &str) -> io::Result<()> {
        writeln!(self.output, "{text}")?;
        self.output.flush()
    }

    /// Asks `question`; `None` at the end of input (Ctrl-D).
    pub(crate) fn ask(&mut self, question: &str) -> io::Result<Option<String>> {
        write!(self.output, "{question} ")?;
        self.output.flush()?;
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            writeln!(self.output)?;
            return Ok(None);
        }
        Ok(Some(line.trim().to_owned()))
    }

    /// Asks until `parse` accepts the answer. An empty answer or the end of input gives
    /// `Ok(None)`, which callers take as "the default". After [`ATTEMPTS`] invalid answers
    /// the last problem is returned as the error.
    pub(crate) fn ask_parsed<T>(
        &mut self,
        question: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> io::Result<Result<Option<T>, String>> {
        let mut problem = String::new();
        for _ in 0..ATTEMPTS {
            match self.ask(question)? {
                None => return Ok(Ok(None)),
                Some(answer) if answer.is_empty() => return Ok(Ok(None)),
                Some(answer) => match parse(&answer) {
                    Ok(value) => return Ok(Ok(Some(value))),
                    Err(why) => {
                        writeln!(self.output, "  {why}")?;
                        problem = why;
                    }
                },
            }
        }
        Ok(Err(problem))
    }

    /// Asks a yes/no question whose default is no.
    pub(crate) fn confirm(&mut self, question: &str) -> io::Result<bool> {
        let answer = self.ask(&format!("{question} [y/N]"))?;
        Ok(matches!(
            answer.as_deref().map(str::to_ascii_lowercase).as_deref(),
            Some("y" | "yes")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompter(input: &str) -> Prompter<&[u8], Vec<u8>> {
        Prompter::new(input.as_bytes(), Vec::new())
    }

    fn number(text: &str) -> Result<u32, String> {
        text.parse()
            .map_err(|_| format!("{text:?} is not a number"))
    }

    #[test]
    fn asks_again_after_an_invalid_answer() {
        let mut p = prompter("abc\n42\n");
        assert_eq!(p.ask_parsed("N?", number).unwrap(), Ok(Some(42)));
        let shown = String::from_utf8(p.output).unwrap();
        assert_eq!(shown.matches("N?").count(), 2);
        assert!(shown.contains("\"abc\" is not a number"), "{shown}");
    }

    #[test]
    fn empty_answer_and_end_of_input_mean_default() {
        assert_eq!(prompter("\n").ask_parsed("N?", number).unwrap(), Ok(None));
        assert_eq!(prompter("").ask_parsed("N?", number).unwrap(), Ok(None));
    }

    #[test]
    fn gives_up_after_repeated_invalid_answers() {
        let mut p = prompter("a\nb\nc\nd\ne\n42\n");
        let result = p.ask_parsed("N?", number).unwrap();
        assert_eq!(result, Err("\"e\" is not a number".to_owned()));
    }

    #[test]
    fn confirm_defaults_to_no() {
        assert!(prompter("y\n").confirm("Go?").unwrap());
        assert!(prompter("YES\n").confirm("Go?").unwrap());
        assert!(!prompter("\n").confirm("Go?").unwrap());
        assert!(!prompter("nope\n").confirm("Go?").unwrap());
        assert!(!prompter("").confirm("Go?").unwrap());
    }
}
