//! `ApiJson<T>`: a bounded JSON body, parsed strictly. Wrong content type or
//! malformed JSON is 400 naming the problem; JSON of the wrong shape (unknown or
//! missing field, wrong type) is 422 naming the field, by its path.
//!
//! serde's derived types are laxer than JSON's shapes: a struct also reads from
//! an array of its fields in order (`["a@b.c"]` for `{"email": "a@b.c"}`), and a
//! unit enum from `{"variant": null}`. No client means those and the schema
//! allows neither, so objects are read only as maps ([`Object`]) and the enums
//! only as strings ([`str_enum`]).

use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::{DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::error::Category;

use super::problem::ApiError;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::BadRequest(
                "the body must be JSON, sent with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|e| {
                let too_large = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                    || e.to_string().contains("length limit");
                if too_large {
                    ApiError::TooLarge(MAX_BODY_BYTES)
                } else {
                    ApiError::BadRequest("the request body could not be read".into())
                }
            })?;
        parse(&bytes).map(ApiJson)
    }
}

/// An optional JSON body: none at all (no `Content-Type`, nothing sent) reads
/// as `T::default()`; anything else is parsed as [`ApiJson`] parses it.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let h = req.headers();
        let empty = h
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0");
        let sized =
            h.contains_key(header::CONTENT_LENGTH) || h.contains_key(header::TRANSFER_ENCODING);
        if !h.contains_key(header::CONTENT_TYPE) && (empty || !sized) {
            return Ok(OptionalJson(T::default()));
        }
        let ApiJson(value) = ApiJson::from_request(req, state).await?;
        Ok(OptionalJson(value))
    }
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Syntax first: reading into `T` stops at its first error, so malformed
    // JSON after an unknown field was a 422 about the field, not a 400. (Into a
    // `Value`: skipping with `IgnoredAny` does not check that strings are UTF-8.)
    serde_json::from_slice::<serde_json::Value>(bytes)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            Category::Data => {
                let field = field_of(&path, &inner.to_string());
                ApiError::invalid(field, strip_position(&inner.to_string()))
            }
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::BadRequest(format!("malformed JSON: {inner}"))
            }
        }
    })?;
    de.end()
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    let Object(value) = value;
    Ok(value)
}

/// A struct read from a JSON object only (see the module docs).
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(MapOnly(d)).map(Object)
    }
}

/// For an optional struct field: `#[serde(default, deserialize_with = "object")]`.
pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<Object<T>>::deserialize(d).map(|o| o.map(|Object(v)| v))
}

/// Asks the JSON deserializer for a map where a struct is asked for, so an
/// array is "invalid type: sequence, expected struct …".
struct MapOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(v)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(v)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct enum identifier ignored_any
    }
}

/// `Deserialize` for a unit enum from its `snake_case` name as a JSON string
/// only (see the module docs); the enum keeps its derived `Serialize`.
macro_rules! str_enum {
    ($ty:ident { $($name:literal => $variant:ident),+ $(,)? }) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                const NAMES: &[&str] = &[$($name),+];
                let s = String::deserialize(d)?;
                match s.as_str() {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(serde::de::Error::unknown_variant(&s, NAMES)),
                }
            }
        }
    };
}
pub(crate) use str_enum;

/// The field a serde data error is about: its path, plus the name a
/// "missing field"/"unknown field" message gives (the path then names the parent).
fn field_of(path: &str, message: &str) -> String {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next());
    match named {
        Some(n) if path == "." || path.is_empty() => n.to_owned(),
        Some(n) if path.ends_with(n) => path.to_owned(),
        Some(n) => format!("{path}.{n}"),
        None => path.to_owned(),
    }
}

/// serde_json appends " at line L column C"; the field says where already.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        email: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        new_user: Option<Inner>,
    }

    fn field(json: &str) -> String {
        match parse::<Body>(json.as_bytes()) {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shape_errors_name_the_field() {
        assert_eq!(field(r#"{}"#), "name");
        assert_eq!(field(r#"{"name": 1}"#), "name");
        assert_eq!(field(r#"{"name": "a", "nope": 1}"#), "nope");
        assert_eq!(field(r#"{"name": "a", "new_user": {}}"#), "new_user.email");
        assert_eq!(
            field(r#"{"name": "a", "new_user": {"email": "x", "role": 1}}"#),
            "new_user.role"
        );
    }

    #[test]
    fn arrays_do_not_stand_in_for_objects() {
        // serde's derive alone takes `["a"]` as `{"name": "a"}`.
        assert_eq!(field(r#"["a", null]"#), ".");
        assert!(matches!(
            parse::<Inner>(br#"["x@example.com"]"#),
            Err(ApiError::Invalid { .. })
        ));
        // Nor when the caller wraps the type itself.
        assert!(matches!(
            parse::<Object<Inner>>(br#"["x@example.com"]"#),
            Err(ApiError::Invalid { .. })
        ));
    }

    #[test]
    fn malformed_json_is_bad_request() {
        for bad in [
            r#"{"name": "a""#,
            "nope",
            r#"{"name": "a"} trailing"#,
            "",
            // Malformed after a field that is unknown: still malformed.
            r#"{"nope": "b"a", "name": "c"}"#,
        ] {
            assert!(
                matches!(parse::<Body>(bad.as_bytes()), Err(ApiError::BadRequest(_))),
                "{bad}"
            );
        }
        // Not UTF-8 in an unknown field's name.
        let bad = b"{\"n\xffpe\": 1, \"name\": \"a\"}";
        assert!(matches!(parse::<Body>(bad), Err(ApiError::BadRequest(_))));
    }
}
