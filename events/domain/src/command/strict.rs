//! A stricter reading of a command's `data` than `serde_json::Value`'s: `data` must be a JSON
//! object, and no object in it may name a key twice. (`Value` keeps the last of two equal keys
//! silently, and a struct read from `Value` also accepts an array, field by position: neither
//! is what the client meant to send.)

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Reads `data`: a JSON object without a repeated key at any depth.
///
/// # Errors
/// A serde error (`invalid type`, or `duplicate key "k"`), which the envelope's parsing turns
/// into `invalid` naming the field.
pub(super) fn object<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    deserializer.deserialize_map(Strict { top: true })
}

/// Builds a [`Value`], refusing repeated keys; at the top, only an object.
struct Strict {
    top: bool,
}

impl<'de> de::DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Strict {
    fn refuse_below_top<E: de::Error>(&self, what: de::Unexpected<'_>) -> Result<(), E> {
        if self.top {
            return Err(E::invalid_type(what, &"a JSON object"));
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.top {
            f.write_str("a JSON object")
        } else {
            f.write_str("a JSON value")
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.refuse_below_top(de::Unexpected::Bool(v))?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.refuse_below_top(de::Unexpected::Signed(v))?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.refuse_below_top(de::Unexpected::Unsigned(v))?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.refuse_below_top(de::Unexpected::Float(v))?;
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Float(v), &"a finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.refuse_below_top(de::Unexpected::Str(v))?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.refuse_below_top(de::Unexpected::Str(&v))?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.refuse_below_top(de::Unexpected::Unit)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.refuse_below_top(de::Unexpected::Seq)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict { top: false })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let value = map.next_value_seed(Strict { top: false })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Holder {
        #[serde(deserialize_with = "super::object")]
        data: serde_json::Value,
    }

    fn read(text: &str) -> Result<serde_json::Value, String> {
        serde_json::from_str::<Holder>(text)
            .map(|h| h.data)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_object_reads_as_value_would() {
        let text = r#"{"data": {"a": [1, -2, 2.5, "x", null, true, {"b": {}}], "c": "é"}}"#;
        assert_eq!(
            read(text).unwrap(),
            json!({"a": [1, -2, 2.5, "x", null, true, {"b": {}}], "c": "é"})
        );
    }

    #[test]
    fn anything_but_an_object_is_refused() {
        for data in [r#"["c1", "l1"]"#, "1", r#""x""#, "null", "true"] {
            let err = read(&format!(r#"{{"data": {data}}}"#)).unwrap_err();
            assert!(err.contains("expected a JSON object"), "{data}: {err}");
        }
    }

    #[test]
    fn a_key_twice_is_refused_at_any_depth() {
        let err = read(r#"{"data": {"a": 1, "a": 2}}"#).unwrap_err();
        assert!(err.contains(r#"duplicate key "a""#), "{err}");
        let err = read(r#"{"data": {"o": {"name": "x", "name": "y"}}}"#).unwrap_err();
        assert!(err.contains(r#"duplicate key "name""#), "{err}");
        let err = read(r#"{"data": {"l": [{"k": 1, "k": 1}]}}"#).unwrap_err();
        assert!(err.contains(r#"duplicate key "k""#), "{err}");
    }
}
