//! Stripe's wire format: form-encoded parameters with nested keys, the error shape, and ids.

use std::collections::BTreeMap;

use rand::Rng as _;
use serde_json::{Map, Value, json};

/// An error answered in Stripe's shape: `{"error": {"type", "code", "message", "param"}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub code: Option<String>,
    pub message: String,
    pub param: Option<String>,
    /// Extra fields for card errors (`decline_code`, `payment_intent`, …).
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: u16, kind: &'static str, code: Option<&str>, message: impl Into<String>) -> Self {
        Self { status, kind, code: code.map(str::to_owned), message: message.into(), param: None, extra: Map::new() }
    }

    pub fn invalid(code: &str, message: impl Into<String>, param: impl Into<String>) -> Self {
        Self { param: Some(param.into()), ..Self::new(400, "invalid_request_error", Some(code), message) }
    }

    pub fn unknown_parameter(param: &str) -> Self {
        Self::invalid("parameter_unknown", format!("Received unknown parameter: {param}"), param)
    }

    pub fn missing(param: &str) -> Self {
        Self::invalid("parameter_missing", format!("Missing required param: {param}."), param)
    }

    pub fn no_such(what: &str, id: &str, param: &str) -> Self {
        Self {
            status: 404,
            param: Some(param.to_owned()),
            ..Self::new(404, "invalid_request_error", Some("resource_missing"), format!("No such {what}: '{id}'"))
        }
    }

    /// An unknown id in a request parameter: a bad request, not a missing resource.
    pub fn no_such_param(what: &str, id: &str, param: &str) -> Self {
        Self::invalid("resource_missing", format!("No such {what}: '{id}'"), param)
    }

    pub fn unrecognised_url(method: &str, path: &str) -> Self {
        Self::new(
            404,
            "invalid_request_error",
            None,
            format!(
                "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
            ),
        )
    }

    pub fn state(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", Some(code), message)
    }

    pub fn card(decline: &Decline) -> Self {
        let mut err = Self::new(402, "card_error", Some(decline.code), decline.message);
        if let Some(d) = decline.decline_code {
            err.extra.insert("decline_code".into(), json!(d));
        }
        err
    }

    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("type".into(), json!(self.kind));
        error.insert("message".into(), json!(self.message));
        if let Some(code) = &self.code {
            error.insert("code".into(), json!(code));
            error.insert(
                "doc_url".into(),
                json!(format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-"))),
            );
        }
        if let Some(param) = &self.param {
            error.insert("param".into(), json!(param));
        }
        error.extend(self.extra.clone());
        json!({ "error": error })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Why a card payment failed, as Stripe reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decline {
    pub code: &'static str,
    pub decline_code: Option<&'static str>,
    pub message: &'static str,
}

// Stripe's declines, as its test cards produce them.
pub const GENERIC_DECLINE: Decline =
    Decline { code: "card_declined", decline_code: Some("generic_decline"), message: "Your card was declined." };
pub const INSUFFICIENT_FUNDS: Decline = Decline {
    code: "card_declined",
    decline_code: Some("insufficient_funds"),
    message: "Your card has insufficient funds.",
};
pub const AUTHENTICATION_FAILED: Decline = Decline {
    code: "payment_intent_authentication_failure",
    decline_code: None,
    message: "We are unable to authenticate your payment method. Please choose a different payment method and try again.",
};
pub const BLOCKED_AS_FRAUD: Decline =
    Decline { code: "card_declined", decline_code: Some("fraudulent"), message: "Your card was declined." };

/// A new object id with Stripe's prefix, e.g. `cus_…`, `cs_test_…`.
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let len = if prefix.starts_with("cs_") { 58 } else { 24 };
    let tail: String = (0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    format!("{prefix}{tail}")
}

/// Parses a form body (or query string) with Stripe's nested keys into a JSON tree of strings:
/// `a[b][c]=v` nests objects, `a[0]=v` and `a[]=v` build arrays.
pub fn parse_form(input: &[u8]) -> ApiResult<Map<String, Value>> {
    enum Node {
        Leaf(String),
        Branch(BTreeMap<String, Node>, bool),
    }
    fn insert(node: &mut BTreeMap<String, Node>, keys: &[String], value: String, full: &str) -> ApiResult<()> {
        let (first, rest) = keys.split_first().expect("keys are never empty");
        let key = if first.is_empty() { format!("{:020}", node.len()) } else { first.clone() };
        if rest.is_empty() {
            if matches!(node.get(&key), Some(Node::Branch(..))) {
                return Err(ApiError::invalid("parameter_invalid_string", format!("Invalid string: {full}"), full));
            }
            node.insert(key, Node::Leaf(value));
            return Ok(());
        }
        let array = rest[0].is_empty() || rest[0].bytes().all(|b| b.is_ascii_digit());
        let entry = node.entry(key).or_insert_with(|| Node::Branch(BTreeMap::new(), array));
        match entry {
            Node::Branch(children, _) => {
                let mut rest = rest.to_vec();
                if let Some(index) = rest.first_mut().filter(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
                {
                    // Pad indexes so that 10 sorts after 9.
                    *index = format!("{:020}", index.parse::<u64>().unwrap_or(0));
                }
                insert(children, &rest, value, full)
            }
            Node::Leaf(_) => {
                Err(ApiError::invalid("parameter_invalid_object", format!("Invalid object: {full}"), full))
            }
        }
    }
    fn to_value(node: Node) -> Value {
        match node {
            Node::Leaf(s) => Value::String(s),
            Node::Branch(children, true) => Value::Array(children.into_values().map(to_value).collect()),
            Node::Branch(children, false) => {
                Value::Object(children.into_iter().map(|(k, v)| (k, to_value(v))).collect())
            }
        }
    }

    let mut root = BTreeMap::new();
    for (raw_key, value) in form_urlencoded::parse(input) {
        let keys = split_key(&raw_key).ok_or_else(|| {
            ApiError::invalid(
                "parameter_invalid_string",
                format!("Invalid parameter name: {raw_key}"),
                raw_key.as_ref(),
            )
        })?;
        insert(&mut root, &keys, value.into_owned(), &raw_key)?;
    }
    Ok(root.into_iter().map(|(k, v)| (k, to_value(v))).collect())
}

/// `a[b][]` → `["a", "b", ""]`; `None` when the brackets do not balance.
fn split_key(key: &str) -> Option<Vec<String>> {
    let (head, mut rest) = match key.find('[') {
        None => return (!key.is_empty() && !key.contains(']')).then(|| vec![key.to_owned()]),
        Some(i) => (&key[..i], &key[i..]),
    };
    if head.is_empty() {
        return None;
    }
    let mut keys = vec![head.to_owned()];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        if inner[..end].contains('[') {
            return None;
        }
        keys.push(inner[..end].to_owned());
        rest = &inner[end + 1..];
    }
    Some(keys)
}

/// Typed access to parameters, remembering which were read so that anything else can be
/// refused as an unknown parameter, as Stripe does.
pub struct Params {
    prefix: String,
    map: Map<String, Value>,
    read: Vec<String>,
}

impl Params {
    pub fn new(map: Map<String, Value>) -> Self {
        Self { prefix: String::new(), map, read: Vec::new() }
    }

    fn nested(prefix: String, map: Map<String, Value>) -> Self {
        Self { prefix, map, read: Vec::new() }
    }

    fn name(&self, key: &str) -> String {
        if self.prefix.is_empty() { key.to_owned() } else { format!("{}[{key}]", self.prefix) }
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.read.push(key.to_owned());
        self.map.get(key).cloned()
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn str(&mut self, key: &str) -> ApiResult<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::invalid(
                "parameter_invalid_string",
                format!("Invalid string: {}", self.name(key)),
                self.name(key),
            )),
        }
    }

    /// A string where an empty value means "unset" (Stripe's way of clearing a field).
    pub fn str_or_unset(&mut self, key: &str) -> ApiResult<Option<Option<String>>> {
        Ok(self.str(key)?.map(|s| (!s.is_empty()).then_some(s)))
    }

    pub fn required_str(&mut self, key: &str) -> ApiResult<String> {
        self.str(key)?.filter(|s| !s.is_empty()).ok_or_else(|| ApiError::missing(&self.name(key)))
    }

    pub fn one_of(&mut self, key: &str, allowed: &[&str]) -> ApiResult<Option<String>> {
        match self.str(key)? {
            Some(v) if !allowed.contains(&v.as_str()) => Err(ApiError::invalid(
                "parameter_invalid_string",
                format!("Invalid {}: must be one of {}", self.name(key), allowed.join(", ")),
                self.name(key),
            )),
            other => Ok(other),
        }
    }

    pub fn i64(&mut self, key: &str) -> ApiResult<Option<i64>> {
        match self.str(key)? {
            None => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|_| {
                ApiError::invalid("parameter_invalid_integer", format!("Invalid integer: {s}"), self.name(key))
            }),
        }
    }

    pub fn required_i64(&mut self, key: &str) -> ApiResult<i64> {
        self.i64(key)?.ok_or_else(|| ApiError::missing(&self.name(key)))
    }

    pub fn bool(&mut self, key: &str) -> ApiResult<Option<bool>> {
        match self.str(key)?.as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => {
                Err(ApiError::invalid("parameter_invalid_boolean", format!("Invalid boolean: {other}"), self.name(key)))
            }
        }
    }

    pub fn object(&mut self, key: &str) -> ApiResult<Option<Params>> {
        let name = self.name(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Params::nested(name, map))),
            // An empty string clears an object (e.g. `metadata=`).
            Some(Value::String(s)) if s.is_empty() => Ok(Some(Params::nested(name, Map::new()))),
            Some(_) => Err(ApiError::invalid("parameter_invalid_object", format!("Invalid object: {name}"), name)),
        }
    }

    /// A list of objects (`a[0][x]=…`).
    pub fn objects(&mut self, key: &str) -> ApiResult<Vec<Params>> {
        let name = self.name(key);
        match self.take(key) {
            None => Ok(vec![]),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Object(map) => Ok(Params::nested(format!("{name}[{i}]"), map)),
                    _ => Err(ApiError::invalid(
                        "parameter_invalid_object",
                        format!("Invalid object: {name}[{i}]"),
                        name.clone(),
                    )),
                })
                .collect(),
            Some(_) => Err(ApiError::invalid("parameter_invalid_array", format!("Invalid array: {name}"), name)),
        }
    }

    /// A list of strings (`a[]=x&a[]=y`).
    pub fn strings(&mut self, key: &str) -> ApiResult<Vec<String>> {
        let name = self.name(key);
        match self.take(key) {
            None => Ok(vec![]),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(ApiError::invalid(
                        "parameter_invalid_string",
                        format!("Invalid string in {name}"),
                        name.clone(),
                    )),
                })
                .collect(),
            Some(Value::String(s)) => Ok(vec![s]),
            Some(_) => Err(ApiError::invalid("parameter_invalid_array", format!("Invalid array: {name}"), name)),
        }
    }

    /// `metadata[key]=value`; at most 50 keys, as Stripe allows.
    pub fn metadata(&mut self) -> ApiResult<Option<Map<String, Value>>> {
        let Some(mut meta) = self.object("metadata")? else { return Ok(None) };
        let keys: Vec<String> = meta.map.keys().cloned().collect();
        if keys.len() > 50 {
            return Err(ApiError::invalid(
                "parameter_invalid_object",
                "Metadata can have at most 50 keys.",
                "metadata",
            ));
        }
        let mut out = Map::new();
        for key in keys {
            if let Some(v) = meta.str(&key)? {
                out.insert(key, json!(v));
            }
        }
        Ok(Some(out))
    }

    /// Refuses any parameter that was not read. Handlers call it before changing anything,
    /// so an unknown parameter never leaves a partial write.
    pub fn check(&self) -> ApiResult<()> {
        match self.map.keys().find(|k| !self.read.contains(k)) {
            Some(unknown) => Err(ApiError::unknown_parameter(&self.name(unknown))),
            None => Ok(()),
        }
    }

    pub fn finish(self) -> ApiResult<()> {
        self.check()
    }
}

/// Sets `value[key]` to each metadata entry, deleting keys given an empty value.
pub fn merge_metadata(target: &mut Value, update: Map<String, Value>) {
    let meta = target["metadata"].as_object_mut();
    let Some(meta) = meta else {
        target["metadata"] = Value::Object(update.into_iter().filter(|(_, v)| v != "").collect());
        return;
    };
    if update.is_empty() {
        meta.clear();
    }
    for (k, v) in update {
        if v == "" {
            meta.remove(&k);
        } else {
            meta.insert(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_keys_arrays_and_metadata() {
        let parsed = parse_form(
            b"line_items[0][price]=price_1&line_items[0][quantity]=2&line_items[1][price]=price_2&expand[]=a&expand[]=b.c&metadata[lot]=L%2012&mode=payment",
        )
        .unwrap();
        assert_eq!(
            Value::Object(parsed),
            json!({
                "line_items": [{"price": "price_1", "quantity": "2"}, {"price": "price_2"}],
                "expand": ["a", "b.c"],
                "metadata": {"lot": "L 12"},
                "mode": "payment"
            })
        );
    }

    #[test]
    fn indexes_sort_numerically() {
        let body: String = (0..12).map(|i| format!("a[{i}]={i}&")).collect();
        let parsed = parse_form(body.as_bytes()).unwrap();
        assert_eq!(parsed["a"][10], json!("10"));
    }

    #[test]
    fn malformed_keys_and_conflicts_are_invalid_requests() {
        for body in ["a[b=1", "a]=1", "[a]=1", "a=1&a[b]=2", "a[b]=2&a=1"] {
            let err = parse_form(body.as_bytes()).unwrap_err();
            assert_eq!(err.status, 400, "{body}");
            assert_eq!(err.kind, "invalid_request_error");
        }
    }

    #[test]
    fn unread_parameters_are_unknown() {
        let mut p = Params::new(parse_form(b"email=a%40b.c&nickname=x").unwrap());
        assert_eq!(p.str("email").unwrap().as_deref(), Some("a@b.c"));
        let err = p.finish().unwrap_err();
        assert_eq!(err.code.as_deref(), Some("parameter_unknown"));
        assert_eq!(err.param.as_deref(), Some("nickname"));
    }

    #[test]
    fn nested_unknowns_name_their_path() {
        let mut p = Params::new(parse_form(b"line_items[0][price]=p&line_items[0][colour]=red").unwrap());
        let mut items = p.objects("line_items").unwrap();
        let mut item = items.remove(0);
        item.str("price").unwrap();
        assert_eq!(item.finish().unwrap_err().message, "Received unknown parameter: line_items[0][colour]");
    }

    #[test]
    fn typed_values_are_checked() {
        let mut p = Params::new(parse_form(b"amount=ten&livemode=maybe").unwrap());
        assert_eq!(p.i64("amount").unwrap_err().code.as_deref(), Some("parameter_invalid_integer"));
        assert_eq!(p.bool("livemode").unwrap_err().code.as_deref(), Some("parameter_invalid_boolean"));
    }

    #[test]
    fn ids_carry_stripe_prefixes() {
        assert!(new_id("cus_").starts_with("cus_"));
        assert_eq!(new_id("cus_").len(), 28);
        assert!(new_id("cs_test_").len() > 60);
        assert_ne!(new_id("pi_"), new_id("pi_"));
    }
}
