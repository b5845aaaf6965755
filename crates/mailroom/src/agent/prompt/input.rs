//! Where the prompts' lines come from: a terminal with line editing, history and Tab
//! completion (rustyline), or a pipe, whose lines are echoed after their prompt so that a
//! batch script's output reads like a terminal session.

use std::io::{BufRead, IsTerminal, Write};

use rustyline::error::ReadlineError;

use crate::agent::failure::AgentError;

/// What Tab completes at the current prompt.
#[derive(Clone, Copy)]
pub(super) enum Complete {
    /// The command word, from this list (the prompt's own commands; `help` and `exit` are
    /// always offered).
    Words(&'static str),
    Nothing,
}

/// Tab completion for the terminal: command words at the command prompts.
pub(super) struct AgentHelper {
    mode: std::cell::Cell<Complete>,
}

impl rustyline::completion::Completer for AgentHelper {
    type Candidate = rustyline::completion::Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Self::Candidate>)> {
        match self.mode.get() {
            Complete::Nothing => Ok((pos, Vec::new())),
            Complete::Words(words) => {
                let typed = &line[..pos];
                // Only the first word is a command.
                if typed.trim_start().contains(char::is_whitespace) {
                    return Ok((pos, Vec::new()));
                }
                let start = typed.len() - typed.trim_start().len();
                let prefix = typed.trim_start().to_ascii_lowercase();
                let found = words
                    .split_whitespace()
                    .chain(["help", "exit"])
                    .filter(|w| w.starts_with(&prefix))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .map(|w| rustyline::completion::Pair {
                        display: w.to_string(),
                        replacement: format!("{w} "),
                    })
                    .collect();
                Ok((start, found))
            }
        }
    }
}

impl rustyline::hint::Hinter for AgentHelper {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for AgentHelper {}
impl rustyline::validate::Validator for AgentHelper {}
impl rustyline::Helper for AgentHelper {}

type Editor = rustyline::Editor<AgentHelper, rustyline::history::DefaultHistory>;

/// What one read gave.
pub(super) enum Read {
    Line(String),
    /// End of input (Ctrl-D, or the end of the piped script).
    Eof,
    /// Ctrl-C on a terminal.
    Interrupted,
}

/// Where commands come from: a terminal with line editing, or a pipe.
pub(super) enum Input {
    Tty(Box<Editor>),
    Pipe(std::io::StdinLock<'static>),
}

impl Input {
    pub(super) fn new() -> Input {
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            if let Ok(mut ed) = Editor::new() {
                ed.set_helper(Some(AgentHelper {
                    mode: std::cell::Cell::new(Complete::Nothing),
                }));
                return Input::Tty(Box::new(ed));
            }
        }
        Input::Pipe(std::io::stdin().lock())
    }

    /// Whether the lines come from a pipe (a batch script), not a person at a terminal.
    pub(super) fn is_pipe(&self) -> bool {
        matches!(self, Input::Pipe(_))
    }

    /// A command line at `prompt`: Tab completes `commands` (the prompt's own list), and the
    /// line goes into the history (one history for all prompts).
    pub(super) fn command(
        &mut self,
        prompt: &str,
        commands: &'static str,
    ) -> Result<Read, AgentError> {
        self.read(prompt, Complete::Words(commands), true)
    }

    /// One field of a form (To:, Subject:, a line of text): kept out of the history.
    pub(super) fn field(&mut self, prompt: &str, complete: Complete) -> Result<Read, AgentError> {
        self.read(prompt, complete, false)
    }

    fn read(
        &mut self,
        prompt: &str,
        complete: Complete,
        history: bool,
    ) -> Result<Read, AgentError> {
        match self {
            Input::Tty(ed) => {
                if let Some(h) = ed.helper() {
                    h.mode.set(complete);
                }
                let read = ed.readline(prompt);
                match read {
                    Ok(line) => {
                        if history && !line.trim().is_empty() {
                            let _ = ed.add_history_entry(line.as_str());
                        }
                        Ok(Read::Line(line))
                    }
                    Err(ReadlineError::Eof) => Ok(Read::Eof),
                    Err(ReadlineError::Interrupted) => Ok(Read::Interrupted),
                    Err(e) => Err(AgentError::local(format!(
                        "cannot read from the terminal: {e}"
                    ))),
                }
            }
            Input::Pipe(stdin) => {
                let mut out = std::io::stdout().lock();
                let _ = write!(out, "{prompt}");
                let _ = out.flush();
                let mut line = String::new();
                match stdin.read_line(&mut line) {
                    Ok(0) => {
                        let _ = writeln!(out);
                        Ok(Read::Eof)
                    }
                    Ok(_) => {
                        let line = line.trim_end_matches(['\r', '\n']).to_string();
                        // Echo, so that the transcript shows what the script typed.
                        let _ = writeln!(out, "{line}");
                        Ok(Read::Line(line))
                    }
                    Err(e) => Err(AgentError::local(format!("cannot read stdin: {e}"))),
                }
            }
        }
    }
}
