//! Minimal XML-RPC codec (methodCall decoding, methodResponse / fault encoding),
//! mapping XML-RPC values onto `serde_json::Value`.

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::{Map, Value};

#[derive(Debug, Default)]
struct El {
    name: String,
    children: Vec<El>,
    text: String,
}

fn parse_tree(s: &str) -> Result<El, String> {
    let mut reader = Reader::from_str(s);
    let mut stack: Vec<El> = vec![El::default()];
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => {
                stack.push(El {
                    name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    ..El::default()
                });
            }
            Event::Empty(e) => {
                let el = El {
                    name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    ..El::default()
                };
                if let Some(top) = stack.last_mut() {
                    top.children.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("unbalanced xml")?;
                match stack.last_mut() {
                    Some(top) => top.children.push(el),
                    None => return Err("unbalanced xml".into()),
                }
            }
            Event::Text(t) => {
                let txt = t.unescape().map_err(|e| e.to_string())?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&txt);
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err("unbalanced xml".into());
    }
    let root = stack.pop().ok_or("empty xml")?;
    root.children
        .into_iter()
        .next()
        .ok_or_else(|| "empty xml".to_string())
}

fn decode_value(v: &El) -> Result<Value, String> {
    let Some(inner) = v.children.first() else {
        return Ok(Value::String(v.text.clone()));
    };
    let t = inner.text.trim();
    Ok(match inner.name.as_str() {
        "string" => Value::String(inner.text.clone()),
        "int" | "i4" | "i8" => Value::from(t.parse::<i64>().map_err(|e| e.to_string())?),
        "boolean" => Value::Bool(t == "1"),
        "double" => serde_json::Number::from_f64(t.parse::<f64>().map_err(|e| e.to_string())?)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        "dateTime.iso8601" | "base64" => Value::String(t.to_string()),
        "nil" => Value::Null,
        "array" => {
            let data = inner.children.iter().find(|c| c.name == "data");
            Value::Array(
                data.map(|d| {
                    d.children
                        .iter()
                        .filter(|c| c.name == "value")
                        .map(decode_value)
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default(),
            )
        }
        "struct" => {
            let mut m = Map::new();
            for member in inner.children.iter().filter(|c| c.name == "member") {
                let name = member
                    .children
                    .iter()
                    .find(|c| c.name == "name")
                    .map(|n| n.text.clone())
                    .unwrap_or_default();
                let val = member
                    .children
                    .iter()
                    .find(|c| c.name == "value")
                    .map(decode_value)
                    .transpose()?
                    .unwrap_or(Value::Null);
                m.insert(name, val);
            }
            Value::Object(m)
        }
        other => return Err(format!("unknown XML-RPC type {other}")),
    })
}

/// Decodes a `methodCall` into (methodName, params).
pub fn decode_call(body: &str) -> Result<(String, Vec<Value>), String> {
    let root = parse_tree(body)?;
    if root.name != "methodCall" {
        return Err("not a methodCall".into());
    }
    let name = root
        .children
        .iter()
        .find(|c| c.name == "methodName")
        .map(|c| c.text.trim().to_string())
        .ok_or("no methodName")?;
    let mut params = Vec::new();
    if let Some(ps) = root.children.iter().find(|c| c.name == "params") {
        for p in ps.children.iter().filter(|c| c.name == "param") {
            if let Some(v) = p.children.iter().find(|c| c.name == "value") {
                params.push(decode_value(v)?);
            }
        }
    }
    Ok((name, params))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn encode_value(v: &Value, out: &mut String) {
    out.push_str("<value>");
    match v {
        Value::Null => out.push_str("<boolean>0</boolean>"),
        Value::Bool(b) => out.push_str(if *b {
            "<boolean>1</boolean>"
        } else {
            "<boolean>0</boolean>"
        }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&format!("<int>{i}</int>"));
            } else {
                out.push_str(&format!("<double>{:?}</double>", n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::String(s) => {
            out.push_str("<string>");
            out.push_str(&escape(s));
            out.push_str("</string>");
        }
        Value::Array(a) => {
            out.push_str("<array><data>\n");
            for x in a {
                encode_value(x, out);
                out.push('\n');
            }
            out.push_str("</data></array>");
        }
        Value::Object(m) => {
            out.push_str("<struct>\n");
            for (k, x) in m {
                out.push_str("<member>\n<name>");
                out.push_str(&escape(k));
                out.push_str("</name>\n");
                encode_value(x, out);
                out.push_str("\n</member>\n");
            }
            out.push_str("</struct>");
        }
    }
    out.push_str("</value>");
}

/// Encodes a successful `methodResponse`.
pub fn encode_response(v: &Value) -> String {
    let mut out = String::from("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n");
    encode_value(v, &mut out);
    out.push_str("\n</param>\n</params>\n</methodResponse>\n");
    out
}

/// Encodes a fault; `code` is an int (`/xmlrpc/2`) or a string (legacy `/xmlrpc`).
pub fn encode_fault(code: Value, message: &str) -> String {
    let mut m = Map::new();
    m.insert("faultCode".into(), code);
    m.insert("faultString".into(), Value::String(message.to_string()));
    let mut out = String::from("<?xml version='1.0'?>\n<methodResponse>\n<fault>\n");
    encode_value(&Value::Object(m), &mut out);
    out.push_str("\n</fault>\n</methodResponse>\n");
    out
}

/// Encodes a `methodCall` (for tests and clients).
pub fn encode_call(method: &str, params: &[Value]) -> String {
    let mut out = format!(
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>{}</methodName>\n<params>\n",
        escape(method)
    );
    for p in params {
        out.push_str("<param>\n");
        encode_value(p, &mut out);
        out.push_str("\n</param>\n");
    }
    out.push_str("</params>\n</methodCall>\n");
    out
}

/// Decodes a `methodResponse`: `Ok(value)` or `Err((faultCode, faultString))`.
pub fn decode_response(body: &str) -> Result<Result<Value, (Value, String)>, String> {
    let root = parse_tree(body)?;
    if root.name != "methodResponse" {
        return Err("not a methodResponse".into());
    }
    if let Some(f) = root.children.iter().find(|c| c.name == "fault") {
        let v = f
            .children
            .iter()
            .find(|c| c.name == "value")
            .map(decode_value)
            .transpose()?
            .unwrap_or(Value::Null);
        let code = v.get("faultCode").cloned().unwrap_or(Value::Null);
        let msg = v
            .get("faultString")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return Ok(Err((code, msg)));
    }
    let v = root
        .children
        .iter()
        .find(|c| c.name == "params")
        .and_then(|ps| ps.children.iter().find(|c| c.name == "param"))
        .and_then(|p| p.children.iter().find(|c| c.name == "value"))
        .map(decode_value)
        .transpose()?
        .unwrap_or(Value::Null);
    Ok(Ok(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roundtrip() {
        let params = vec![
            json!("odoo"),
            json!(2),
            json!("admin"),
            json!("res.partner"),
            json!("search_read"),
            json!([[["is_company", "=", true]]]),
            json!({"fields": ["name"], "limit": 5, "x": 1.5, "b": false}),
        ];
        let xml = encode_call("execute_kw", &params);
        let (name, back) = decode_call(&xml).unwrap();
        assert_eq!(name, "execute_kw");
        assert_eq!(back, params);
        let r = decode_response(&encode_response(&json!([{"id": 1, "name": "a & b"}])))
            .unwrap()
            .unwrap();
        assert_eq!(r, json!([{"id": 1, "name": "a & b"}]));
        let f = decode_response(&encode_fault(json!(3), "Access Denied"))
            .unwrap()
            .unwrap_err();
        assert_eq!(f, (json!(3), "Access Denied".to_string()));
        let (_, p) = decode_call("<?xml version='1.0'?><methodCall><methodName>version</methodName><params><param><value>plain</value></param></params></methodCall>").unwrap();
        assert_eq!(p, vec![json!("plain")]);
    }
}
