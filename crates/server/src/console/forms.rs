//! Form plumbing shared by the console pages: errors shown beside their field,
//! and the small parsing steps (text areas of one URI per line, checkbox groups).
//! Nothing here decides what is valid; `gatehouse_core::admin` does.

use gatehouse_core::admin::AdminError;
use gatehouse_core::form::Form;

/// Messages per form field, plus one for the form as a whole.
#[derive(Debug, Default)]
pub struct Errors {
    fields: Vec<(String, String)>,
    pub general: Option<String>,
}

impl Errors {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    /// `"invalid"` for a field that has an error (a CSS class), else `""`.
    pub fn class(&self, field: &str) -> &'static str {
        if self.get(field).is_some() {
            "invalid"
        } else {
            ""
        }
    }

    /// Errors of fields the form does not show become the form's own message.
    pub fn known_only(mut self, known: &[&str]) -> Self {
        let (shown, hidden): (Vec<_>, Vec<_>) = std::mem::take(&mut self.fields)
            .into_iter()
            .partition(|(f, _)| known.contains(&f.as_str()));
        self.fields = shown;
        if let Some((f, m)) = hidden.into_iter().next() {
            self.general.get_or_insert(format!("{f}: {m}"));
        }
        self
    }

    pub fn field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.fields.push((field.into(), message.into()));
        self
    }
}

/// How an admin error shows on a form: beside its field (422), as the form's own
/// message (409), or not on the form at all (404, 503, 500).
pub enum Shown {
    OnForm(Errors, axum::http::StatusCode),
    Elsewhere(AdminError),
}

/// `prefix` names the field group (e.g. `new_user_` for the inline user form).
pub fn show(e: AdminError, prefix: &str) -> Shown {
    use axum::http::StatusCode;
    match e {
        AdminError::Invalid { field, message } => Shown::OnForm(
            Errors::default().field(format!("{prefix}{field}"), message),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        AdminError::Conflict(what) => Shown::OnForm(
            Errors {
                general: Some(what),
                ..Errors::default()
            },
            StatusCode::CONFLICT,
        ),
        other => Shown::Elsewhere(other),
    }
}

/// A field's value, trimmed, `""` when absent.
pub fn text(form: &Form, name: &str) -> String {
    form.get(name).unwrap_or("").trim().to_owned()
}

/// One entry per non-empty line of a text area.
pub fn lines(value: &str) -> Vec<String> {
    value
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The checked boxes of a group named `prefix<value>` (the strict form parser
/// refuses repeated names, so each box has its own).
pub fn checked(form: &Form, prefix: &str, choices: &[String]) -> Vec<String> {
    choices
        .iter()
        .filter(|c| form.get(&format!("{prefix}{c}")).is_some())
        .cloned()
        .collect()
}

/// Comma- or space-separated names (groups).
pub fn names(value: &str) -> Vec<String> {
    value
        .split([',', ' '])
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_areas_and_lists() {
        assert_eq!(
            lines(" https://a.test/cb \r\n\r\nhttps://b.test/cb"),
            ["https://a.test/cb", "https://b.test/cb"]
        );
        assert_eq!(names("ops, eng  qa"), ["ops", "eng", "qa"]);
        let form = Form::parse(b"scope%3Aa=on&scope%3Ac=on").unwrap();
        let choices = ["a", "b", "c"].map(String::from);
        assert_eq!(checked(&form, "scope:", &choices), ["a", "c"]);
    }
}
