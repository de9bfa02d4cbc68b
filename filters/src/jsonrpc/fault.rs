//! XML-RPC faults in Odoo's shape (odoo-protocol.md §2.2), for answers BridgeCore writes itself
//! to XML-RPC callers (read batches, field expansion).
//!
//! Odoo's `addons/base/controllers/rpc.py` maps an exception to a fault by its class:
//!
//! | exception | `/xmlrpc/2` (`xmlrpc_handle_exception_int`) | `/xmlrpc` (`xmlrpc_handle_exception_string`) |
//! |---|---|---|
//! | `RedirectWarning` | `2`, message | `"warning -- Warning\n\n" + message`, `""` |
//! | `AccessError` | `4`, message | `"warning -- AccessError\n\n" + message`, `""` |
//! | `AccessDenied` | `3`, message | `"AccessDenied"`, message |
//! | `MissingError` | `2`, message | `"warning -- MissingError\n\n" + message`, `""` |
//! | other `UserError`s (`ValidationError`, ...) | `2`, message | `"warning -- UserError\n\n" + message`, `""` |
//! | anything else | `1`, the traceback | message, the traceback |
//!
//! (first matching row; `faultCode`, `faultString`). BridgeCore learns Odoo's errors from its
//! JSON-RPC answers, which give the class (`data.name`) and message but no traceback it keeps:
//! where Odoo sends the traceback, BridgeCore sends its last line, `ValueError: message` (the
//! qualified name, `builtins.` dropped as Python's `traceback` module drops it).

use crate::error::ErrorKind;

/// An XML-RPC `faultCode`: an integer on `/xmlrpc/2`, a string on the legacy `/xmlrpc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultCode {
    /// `/xmlrpc/2`: 1 application error, 2 warning (`UserError`), 3 `AccessDenied`,
    /// 4 `AccessError`.
    Int(i32),
    /// Legacy `/xmlrpc`: `"warning -- AccessError\n\n…"`, `"AccessDenied"`, the message.
    Str(String),
}

/// Odoo's `RPC_FAULT_CODE_APPLICATION_ERROR`.
const APPLICATION_ERROR: i32 = 1;
/// Odoo's `RPC_FAULT_CODE_WARNING`.
const WARNING: i32 = 2;
/// Odoo's `RPC_FAULT_CODE_ACCESS_DENIED`.
const ACCESS_DENIED: i32 = 3;
/// Odoo's `RPC_FAULT_CODE_ACCESS_ERROR`.
const ACCESS_ERROR: i32 = 4;

/// Odoo's exception classes the fault handlers tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    RedirectWarning,
    AccessError,
    AccessDenied,
    MissingError,
    /// `UserError` or another of its subclasses in `odoo.exceptions`.
    UserError,
    Other,
}

fn class(name: &str) -> Class {
    match name.strip_prefix("odoo.exceptions.") {
        Some("RedirectWarning") => Class::RedirectWarning,
        Some("AccessError") => Class::AccessError,
        Some("AccessDenied") => Class::AccessDenied,
        Some("MissingError") => Class::MissingError,
        // 16's `Warning` is a `UserError` too.
        Some("UserError" | "ValidationError" | "Warning") => Class::UserError,
        _ => Class::Other,
    }
}

/// The last line of the traceback Python prints for `name: message`.
fn last_line(name: &str, message: &str) -> String {
    let name = name.strip_prefix("builtins.").unwrap_or(name);
    if message.is_empty() {
        format!("{name}\n")
    } else {
        format!("{name}: {message}\n")
    }
}

/// The fault Odoo answers on `/xmlrpc/2` (`legacy: false`) or `/xmlrpc` (`legacy: true`) for
/// the exception `name` (`data.name`, e.g. `odoo.exceptions.AccessError`) with `message`:
/// `(faultCode, faultString)` (see the module documentation).
pub fn odoo_fault(legacy: bool, name: &str, message: &str) -> (FaultCode, String) {
    let class = class(name);
    if !legacy {
        let code = match class {
            Class::RedirectWarning | Class::MissingError | Class::UserError => WARNING,
            Class::AccessError => ACCESS_ERROR,
            Class::AccessDenied => ACCESS_DENIED,
            Class::Other => return (FaultCode::Int(APPLICATION_ERROR), last_line(name, message)),
        };
        return (FaultCode::Int(code), message.to_owned());
    }
    let warning = |title: &str| {
        (
            FaultCode::Str(format!("warning -- {title}\n\n{message}")),
            String::new(),
        )
    };
    match class {
        Class::RedirectWarning => warning("Warning"),
        Class::MissingError => warning("MissingError"),
        Class::AccessError => warning("AccessError"),
        Class::UserError => warning("UserError"),
        Class::AccessDenied => (FaultCode::Str("AccessDenied".into()), message.to_owned()),
        Class::Other => (FaultCode::Str(message.to_owned()), last_line(name, message)),
    }
}

/// BridgeCore's own error (Odoo unreachable, silent, or answering nonsense) as a fault, shaped
/// as Odoo shapes an unexpected exception: `1` (or, legacy, the message) with
/// `bridgecore.BadGateway: message` where the traceback would be.
pub fn bridgecore_fault(legacy: bool, kind: ErrorKind, message: &str) -> (FaultCode, String) {
    let string = last_line(kind.name(), message);
    if legacy {
        (FaultCode::Str(message.to_owned()), string)
    } else {
        (FaultCode::Int(APPLICATION_ERROR), string)
    }
}
