//! Printing results: JSON on standard output with `--json`, a short human line otherwise.

use serde_json::Value;

pub struct Out {
    pub json: bool,
}

impl Out {
    /// Prints `doc` as JSON, or `human` for people.
    pub fn print(&self, doc: &Value, human: impl FnOnce() -> String) {
        if self.json {
            println!("{doc}");
        } else {
            println!("{}", human());
        }
    }
}
