//! Property tests of the command decoder and validator (the fuzz target of the command path):
//! whatever the bytes, decoding answers `Ok` or an `invalid` rejection with a message, and
//! never panics. `PROPTEST_CASES` raises the count (default here: 10,000).

use crate::command::{Command, CommandEnvelope, COMMAND_NAMES};
use crate::Code;
use proptest::prelude::*;
use serde_json::{json, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        "[a-z0-9-]{0,70}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,16}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn decode(line: &str) -> Result<Command, crate::Rejection> {
    let envelope = CommandEnvelope::parse_line(line)?;
    envelope.check_clock(chrono::Utc::now())?;
    Command::parse(&envelope.command, &envelope.data)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn any_text_decodes_or_is_invalid(line in any::<String>()) {
        if let Err(r) = decode(&line) {
            prop_assert_eq!(r.code, Code::Invalid);
            prop_assert!(!r.message.is_empty());
        }
    }

    #[test]
    fn any_data_for_any_command_decodes_or_is_invalid(name in 0..=COMMAND_NAMES.len(), data in json_value(), at in "[0-9T:+Z-]{0,30}") {
        // One past the list: an unknown command name.
        let command = COMMAND_NAMES.get(name).copied().unwrap_or("nope");
        let line = json!({"command_id": "c-1", "command": command, "at": at, "actor": "staff:x", "data": data}).to_string();
        if let Err(r) = decode(&line) {
            prop_assert_eq!(r.code, Code::Invalid);
            prop_assert!(!r.message.is_empty());
        }
    }
}
