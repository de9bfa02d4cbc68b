//! Which Odoo endpoint a request path belongs to.
//!
//! BridgeCore only reads and parses the bodies of routes whose wire format it knows (the
//! JSON-RPC and XML-RPC routes of odoo-protocol.md §1-§2); everything else is proxied as nginx
//! would. [`endpoint`] makes that decision once per request, from the path alone.
//!
//! # Matching rules
//!
//! Matching is exact and case-sensitive on segment boundaries, like Odoo's werkzeug router:
//! `/jsonrpcX` and `/web/dataset/call_kwx` are [`Endpoint::Other`]. The path is taken as it
//! arrived (without the query string): nothing is percent-decoded and `//` is not merged. That is
//! safe because werkzeug does not route such spellings to the same endpoint either: `/json%72pc`
//! or `//jsonrpc` reach Odoo as unknown paths (an HTML 404), so a request BridgeCore does not
//! recognise cannot run an RPC call behind its back. Such requests are still classed (default
//! deny) by [`crate::classify::class_of_unparsed`].
//!
//! # Performance
//!
//! [`endpoint`] runs on every request. It only compares string slices and allocates nothing,
//! except the model and method names of [`Endpoint::Json2`].

/// The Odoo endpoint a request path belongs to. Decides whether the body is read and parsed,
/// how (see [`crate::jsonrpc::parse`]) and how the call is classed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/web/dataset/call_kw` and `/web/dataset/call_kw/<anything>`: the web client's ORM calls.
    /// The suffix is decoration; model and method come from the body.
    CallKw,
    /// `/web/dataset/call_button[/<anything>]`: button clicks, always writes.
    CallButton,
    /// `/jsonrpc`: external JSON-RPC (`common`, `object`, `db` services).
    JsonRpc,
    /// `/xmlrpc/2/<service>` (`legacy: false`) or `/xmlrpc/<service>` (`legacy: true`): the same
    /// services as `/jsonrpc`, as XML-RPC `methodCall` bodies.
    XmlRpc {
        /// `true` for the pre-`/2` endpoints, whose faults use string codes.
        legacy: bool,
    },
    /// Odoo 19's `/json/2/<model>/<method>`. Unlike `call_kw`, the path is authoritative here.
    Json2 {
        /// The model named in the path, as sent (not percent-decoded).
        model: String,
        /// The method named in the path, as sent (not percent-decoded).
        method: String,
    },
    /// `/web/session/<name>` (one segment): the `type='json'` session routes (`authenticate`,
    /// `get_session_info`, `destroy`, `check`, `modules`, `get_lang_list`, `account`, ...).
    /// `/web/session/logout` is a `type='http'` GET route and is [`Endpoint::Other`].
    Session,
    /// The other known `type='json'` routes: `/web/action/load`, `/web/action/run`,
    /// `/web/dataset/resequence`, `/web/webclient/version_info`, Odoo 16's
    /// `/web/dataset/search_read`, `/web/dataset/load` and `/web/dataset/call`, and
    /// `/websocket/peek_notifications`, `/websocket/update_bus_presence`, `/websocket/on_closed`.
    WebJson,
    /// The database manager: `/web/database` and `/web/database/*`, except the database
    /// selector `/web/database/selector`. CSRF-free and guarded only by the master password, so
    /// BridgeCore blocks or restricts it (odoo-protocol.md §10).
    DatabaseManager,
    /// The long-lived upgrade endpoints: exactly `/websocket`, and `/longpolling` with its
    /// subpaths (≤ 15.0). Routed to Odoo's gevent port and never parsed.
    Websocket,
    /// Everything else: static files, images, reports, uploads, `/web/session/logout`,
    /// `/websocket/health`, and routes BridgeCore does not know (e.g. `/mail/*`).
    Other,
}

/// Names the Odoo endpoint of `path`, which must not include the query string.
///
/// Never allocates except for [`Endpoint::Json2`]'s model and method. See the module docs for
/// why nothing is normalised.
pub fn endpoint(path: &str) -> Endpoint {
    if let Some(rest) = path.strip_prefix("/web/") {
        return web_endpoint(rest);
    }
    match path {
        "/jsonrpc" => return Endpoint::JsonRpc,
        "/websocket" | "/longpolling" => return Endpoint::Websocket,
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/xmlrpc/") {
        return xmlrpc_endpoint(rest);
    }
    if let Some(rest) = path.strip_prefix("/json/2/") {
        return json2_endpoint(rest);
    }
    if let Some(rest) = path.strip_prefix("/websocket/") {
        return match rest {
            "peek_notifications" | "update_bus_presence" | "on_closed" => Endpoint::WebJson,
            _ => Endpoint::Other,
        };
    }
    if path.starts_with("/longpolling/") {
        return Endpoint::Websocket;
    }
    Endpoint::Other
}

/// Routes under `/web/` (`rest` is what follows that prefix).
fn web_endpoint(rest: &str) -> Endpoint {
    if let Some(dataset) = rest.strip_prefix("dataset/") {
        return match dataset {
            "call_kw" => Endpoint::CallKw,
            "call_button" => Endpoint::CallButton,
            "resequence" | "search_read" | "load" | "call" => Endpoint::WebJson,
            _ if dataset.starts_with("call_kw/") => Endpoint::CallKw,
            _ if dataset.starts_with("call_button/") => Endpoint::CallButton,
            _ => Endpoint::Other,
        };
    }
    if let Some(name) = rest.strip_prefix("session/") {
        return if name.is_empty() || name.contains('/') || name == "logout" {
            Endpoint::Other
        } else {
            Endpoint::Session
        };
    }
    if is_database_manager_rest(rest) {
        return Endpoint::DatabaseManager;
    }
    match rest {
        "action/load" | "action/run" | "webclient/version_info" => Endpoint::WebJson,
        _ => Endpoint::Other,
    }
}

/// `/xmlrpc/2/<service>` or `/xmlrpc/<service>`; werkzeug's `<service>` is one non-empty
/// segment, so anything deeper is not an XML-RPC route.
fn xmlrpc_endpoint(rest: &str) -> Endpoint {
    if let Some(service) = rest.strip_prefix("2/") {
        return if is_segment(service) {
            Endpoint::XmlRpc { legacy: false }
        } else {
            Endpoint::Other
        };
    }
    if is_segment(rest) {
        Endpoint::XmlRpc { legacy: true }
    } else {
        Endpoint::Other
    }
}

/// `/json/2/<model>/<method>`, both non-empty single segments.
fn json2_endpoint(rest: &str) -> Endpoint {
    match rest.split_once('/') {
        Some((model, method)) if is_segment(model) && is_segment(method) => Endpoint::Json2 {
            model: model.to_owned(),
            method: method.to_owned(),
        },
        _ => Endpoint::Other,
    }
}

/// One non-empty path segment.
fn is_segment(s: &str) -> bool {
    !s.is_empty() && !s.contains('/')
}

/// `rest` (after `/web/`) is `database` or `database/...`, but not the selector.
fn is_database_manager_rest(rest: &str) -> bool {
    match rest.strip_prefix("database") {
        Some("") => true,
        Some(sub) => sub.starts_with('/') && sub != "/selector",
        None => false,
    }
}

/// Whether `path` (without query) is a database-manager route: `/web/database` or
/// `/web/database/*` except `/web/database/selector`. Lets the glue block these routes without
/// building an [`Endpoint`].
pub fn is_database_manager(path: &str) -> bool {
    path.strip_prefix("/web/")
        .is_some_and(is_database_manager_rest)
}

impl Endpoint {
    /// Whether BridgeCore reads and parses this route's body as an Odoo call: [`Endpoint::CallKw`],
    /// [`Endpoint::CallButton`], [`Endpoint::JsonRpc`], [`Endpoint::XmlRpc`], [`Endpoint::Json2`],
    /// [`Endpoint::Session`] and [`Endpoint::WebJson`]. The others are proxied untouched.
    pub fn is_rpc(&self) -> bool {
        matches!(
            self,
            Endpoint::CallKw
                | Endpoint::CallButton
                | Endpoint::JsonRpc
                | Endpoint::XmlRpc { .. }
                | Endpoint::Json2 { .. }
                | Endpoint::Session
                | Endpoint::WebJson
        )
    }

    /// A short stable name, for logs and metric labels (bounded: never contains the path).
    pub fn label(&self) -> &'static str {
        match self {
            Endpoint::CallKw => "call_kw",
            Endpoint::CallButton => "call_button",
            Endpoint::JsonRpc => "jsonrpc",
            Endpoint::XmlRpc { .. } => "xmlrpc",
            Endpoint::Json2 { .. } => "json2",
            Endpoint::Session => "session",
            Endpoint::WebJson => "web_json",
            Endpoint::DatabaseManager => "database_manager",
            Endpoint::Websocket => "websocket",
            Endpoint::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json2(model: &str, method: &str) -> Endpoint {
        Endpoint::Json2 {
            model: model.into(),
            method: method.into(),
        }
    }

    #[test]
    fn call_kw_and_call_button_with_and_without_suffix() {
        assert_eq!(endpoint("/web/dataset/call_kw"), Endpoint::CallKw);
        assert_eq!(
            endpoint("/web/dataset/call_kw/res.partner/read"),
            Endpoint::CallKw
        );
        assert_eq!(endpoint("/web/dataset/call_kw/"), Endpoint::CallKw);
        assert_eq!(endpoint("/web/dataset/call_button"), Endpoint::CallButton);
        assert_eq!(
            endpoint("/web/dataset/call_button/sale.order/action_confirm"),
            Endpoint::CallButton
        );
    }

    #[test]
    fn segment_boundaries_are_exact() {
        for path in [
            "/jsonrpcX",
            "/jsonrpc/",
            "/web/dataset/call_kwx",
            "/web/dataset/call_buttonx",
            "/web/dataset/call_kw_x/a",
            "/web/datasetx/call_kw",
            "/web/sessionx/authenticate",
            "/web/databasex",
            "/web/action/loadx",
            "/websocketx",
            "/longpollingx",
            "/xmlrpcx/2/object",
            "/json/2x/res.partner/read",
            "/JSONRPC",
            "/Web/dataset/call_kw",
        ] {
            assert_eq!(endpoint(path), Endpoint::Other, "{path}");
        }
    }

    #[test]
    fn jsonrpc_and_xmlrpc() {
        assert_eq!(endpoint("/jsonrpc"), Endpoint::JsonRpc);
        assert_eq!(
            endpoint("/xmlrpc/2/object"),
            Endpoint::XmlRpc { legacy: false }
        );
        assert_eq!(
            endpoint("/xmlrpc/2/common"),
            Endpoint::XmlRpc { legacy: false }
        );
        assert_eq!(
            endpoint("/xmlrpc/object"),
            Endpoint::XmlRpc { legacy: true }
        );
        assert_eq!(endpoint("/xmlrpc/db"), Endpoint::XmlRpc { legacy: true });
        // `/xmlrpc/<service>` with service "2", as werkzeug would match it.
        assert_eq!(endpoint("/xmlrpc/2"), Endpoint::XmlRpc { legacy: true });
        for path in [
            "/xmlrpc",
            "/xmlrpc/",
            "/xmlrpc/2/",
            "/xmlrpc/2/object/x",
            "/xmlrpc/a/b",
        ] {
            assert_eq!(endpoint(path), Endpoint::Other, "{path}");
        }
    }

    #[test]
    fn json2_takes_model_and_method_from_the_path() {
        assert_eq!(
            endpoint("/json/2/res.partner/search_read"),
            json2("res.partner", "search_read")
        );
        for path in [
            "/json/2/res.partner",
            "/json/2/res.partner/",
            "/json/2//read",
            "/json/2/res.partner/read/x",
            "/json/2/",
            "/json/2",
        ] {
            assert_eq!(endpoint(path), Endpoint::Other, "{path}");
        }
    }

    #[test]
    fn session_routes_except_logout() {
        for name in [
            "authenticate",
            "get_session_info",
            "destroy",
            "check",
            "modules",
            "get_lang_list",
            "account",
        ] {
            assert_eq!(endpoint(&format!("/web/session/{name}")), Endpoint::Session);
        }
        assert_eq!(endpoint("/web/session/logout"), Endpoint::Other);
        assert_eq!(endpoint("/web/session/"), Endpoint::Other);
        assert_eq!(endpoint("/web/session"), Endpoint::Other);
        assert_eq!(endpoint("/web/session/authenticate/x"), Endpoint::Other);
    }

    #[test]
    fn web_json_routes() {
        for path in [
            "/web/action/load",
            "/web/action/run",
            "/web/dataset/resequence",
            "/web/webclient/version_info",
            "/web/dataset/search_read",
            "/web/dataset/load",
            "/web/dataset/call",
            "/websocket/peek_notifications",
            "/websocket/update_bus_presence",
            "/websocket/on_closed",
        ] {
            assert_eq!(endpoint(path), Endpoint::WebJson, "{path}");
        }
        for path in [
            "/mail/message/post",
            "/web/action/load/x",
            "/web/dataset/callx",
        ] {
            assert_eq!(endpoint(path), Endpoint::Other, "{path}");
        }
    }

    #[test]
    fn database_manager_but_not_the_selector() {
        for path in [
            "/web/database",
            "/web/database/",
            "/web/database/manager",
            "/web/database/create",
            "/web/database/drop",
            "/web/database/backup",
            "/web/database/restore",
            "/web/database/selector/x",
        ] {
            assert_eq!(endpoint(path), Endpoint::DatabaseManager, "{path}");
            assert!(is_database_manager(path), "{path}");
        }
        for path in [
            "/web/database/selector",
            "/web/databases",
            "/web/login",
            "/database",
        ] {
            assert_ne!(endpoint(path), Endpoint::DatabaseManager, "{path}");
            assert!(!is_database_manager(path), "{path}");
        }
    }

    #[test]
    fn websocket_upgrade_endpoints_only() {
        assert_eq!(endpoint("/websocket"), Endpoint::Websocket);
        assert_eq!(endpoint("/longpolling"), Endpoint::Websocket);
        assert_eq!(endpoint("/longpolling/poll"), Endpoint::Websocket);
        assert_eq!(endpoint("/longpolling/im_status"), Endpoint::Websocket);
        assert_eq!(endpoint("/websocket/health"), Endpoint::Other);
        assert_eq!(endpoint("/websocket/"), Endpoint::Other);
        assert_eq!(endpoint("/websocket/peek_notifications"), Endpoint::WebJson);
    }

    #[test]
    fn nothing_is_normalised() {
        for path in [
            "//jsonrpc",
            "/web//dataset/call_kw",
            "/json%72pc",
            "/web/dataset/call%5Fkw",
            "/web/./dataset/call_kw",
            "",
            "jsonrpc",
        ] {
            assert_eq!(endpoint(path), Endpoint::Other, "{path}");
        }
    }

    #[test]
    fn other_routes() {
        for path in [
            "/",
            "/web",
            "/odoo",
            "/web/login",
            "/web/static/src/img/logo.png",
            "/web/image/res.partner/3/avatar_128",
            "/web/content/42",
            "/report/pdf/sale.report_saleorder/42",
            "/web/binary/upload_attachment",
            "/web/health",
        ] {
            assert_eq!(endpoint(path), Endpoint::Other, "{path}");
        }
    }

    #[test]
    fn is_rpc_and_labels() {
        let rpc = [
            Endpoint::CallKw,
            Endpoint::CallButton,
            Endpoint::JsonRpc,
            Endpoint::XmlRpc { legacy: false },
            json2("a", "b"),
            Endpoint::Session,
            Endpoint::WebJson,
        ];
        for e in &rpc {
            assert!(e.is_rpc(), "{e:?}");
        }
        for e in [
            Endpoint::DatabaseManager,
            Endpoint::Websocket,
            Endpoint::Other,
        ] {
            assert!(!e.is_rpc(), "{e:?}");
        }
        let labels: std::collections::HashSet<_> = rpc.iter().map(Endpoint::label).collect();
        assert_eq!(labels.len(), rpc.len());
    }
}
