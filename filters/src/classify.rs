//! Classes of calls: what may be cached, what invalidates, what counts against which limit.
//!
//! The rule is a **default-deny allowlist** (design.md §5, odoo-protocol.md §3.2): only the exact
//! ORM methods of the protocol notes' first row are cacheable reads; `onchange`, `copy_data` and
//! a short list of read-only JSON routes are uncacheable reads; login calls are [`Class::Auth`];
//! `unlink` is [`Class::Delete`]; **everything else is a [`Class::Write`]**: unknown methods,
//! private methods (leading `_`), every `call_button`, unknown JSON routes and unknown POSTs.
//! A wrong "write" only costs a cache invalidation; a wrong "read" would serve stale data or let
//! a write through a read-only token, so every doubt resolves to a write.
//!
//! The URL suffix of `/web/dataset/call_kw/<model>/<method>` is never looked at: Odoo ignores it,
//! so the class comes from the body's method only.
//!
//! Lookups are `match`es and a binary search over a sorted static slice: nothing allocates.

use http::Method;

use crate::call::{Call, Shape};
use crate::route::Endpoint;

/// What a call does, as far as caching and invalidation are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A pure ORM read whose result may be cached (odoo-protocol.md §3.2, first row).
    CacheableRead,
    /// Does not change data, but its answer must not be stored (`onchange`, `copy_data`,
    /// `/web/session/get_session_info`, `common.version`, ...). Never invalidates either.
    UncacheableRead,
    /// Changes data (or may: every unknown method). Forwarded once, bumps generations.
    Write,
    /// `unlink`: a write, with its own rate-limit category.
    Delete,
    /// A login attempt (`common.login`/`authenticate`, `/web/session/authenticate`,
    /// `POST /web/login`): limited per account against brute force.
    Auth,
}

/// Rate-limit categories: each has its own configured limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Login attempts.
    Auth,
    /// Reads, cacheable or not.
    Read,
    /// Writes other than deletes.
    Write,
    /// Deletes (`unlink`).
    Delete,
}

impl Class {
    /// The rate-limit category this class counts against.
    pub fn category(self) -> Category {
        match self {
            Class::CacheableRead | Class::UncacheableRead => Category::Read,
            Class::Write => Category::Write,
            Class::Delete => Category::Delete,
            Class::Auth => Category::Auth,
        }
    }

    /// Whether the call changes data ([`Class::Write`] or [`Class::Delete`]): it is forwarded
    /// once, never cached, and invalidates whatever the outcome.
    pub fn is_write(self) -> bool {
        matches!(self, Class::Write | Class::Delete)
    }

    /// A stable name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::CacheableRead => "cacheable_read",
            Class::UncacheableRead => "uncacheable_read",
            Class::Write => "write",
            Class::Delete => "delete",
            Class::Auth => "auth",
        }
    }
}

impl Category {
    /// `"auth"`, `"read"`, `"write"` or `"delete"`: the metric label and config key.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Auth => "auth",
            Category::Read => "read",
            Category::Write => "write",
            Category::Delete => "delete",
        }
    }
}

/// The cacheable ORM methods of odoo-protocol.md §3.2 (first row), sorted for binary search.
const CACHEABLE_METHODS: &[&str] = &[
    "check_access",
    "check_access_rights",
    "check_access_rule",
    "default_get",
    "exists",
    "export_data",
    "fields_get",
    "fields_view_get",
    "get_metadata",
    "get_view",
    "get_views",
    "has_access",
    "has_group",
    "has_groups",
    "load_views",
    "name_get",
    "name_search",
    "read",
    "read_group",
    "read_progress_bar",
    "search",
    "search_count",
    "search_fetch",
    "search_panel_select_multi_range",
    "search_panel_select_range",
    "search_read",
    "web_read",
    "web_read_group",
    "web_search_read",
];

/// The class of the ORM method `method`, whatever route carried it (`call_kw`, `execute_kw`,
/// `execute`, `/json/2`): `unlink` is a delete, the allowlist is cacheable, `onchange` and
/// `copy_data` are uncacheable reads, private (`_`) and unknown methods are writes.
pub fn method_class(method: &str) -> Class {
    if method == "unlink" {
        Class::Delete
    } else if method.starts_with('_') {
        Class::Write
    } else if CACHEABLE_METHODS.binary_search(&method).is_ok() {
        Class::CacheableRead
    } else if matches!(method, "onchange" | "copy_data") {
        Class::UncacheableRead
    } else {
        Class::Write
    }
}

/// The class of a `type='json'` route other than the ORM routes, by exact path:
/// `/web/session/authenticate` logs in; a short list of routes only read; every other route
/// (`/web/dataset/resequence`, `/web/action/run`, `/web/session/destroy`, unknown routes) is a
/// write.
///
/// Besides the read-only routes design.md names, Odoo 16's `/web/dataset/search_read` (a
/// `web_search_read`) and `/web/dataset/load` (a `read`) are uncacheable reads, so that 16's
/// legacy views do not invalidate the whole tenant on every list load. `/web/dataset/call`
/// (16) calls any method, so it stays a write.
pub fn route_class(path: &str) -> Class {
    match path {
        "/web/session/authenticate" => Class::Auth,
        "/web/action/load"
        | "/web/session/get_session_info"
        | "/web/session/check"
        | "/web/session/modules"
        | "/web/session/get_lang_list"
        | "/web/webclient/version_info"
        | "/websocket/peek_notifications"
        | "/web/dataset/search_read"
        | "/web/dataset/load" => Class::UncacheableRead,
        _ => Class::Write,
    }
}

/// The class of an external-RPC service call (`/jsonrpc`, XML-RPC): `object` calls by ORM
/// method, `common.login/authenticate` are logins, `common.version/about` and the `db`
/// service's read-only four are uncacheable reads, the rest are writes.
fn service_class(
    service: Option<&str>,
    service_method: Option<&str>,
    method: Option<&str>,
) -> Class {
    match (service, service_method) {
        (Some("object"), Some("execute_kw" | "execute")) => {
            method.map_or(Class::Write, method_class)
        }
        (Some("common"), Some("login" | "authenticate")) => Class::Auth,
        (Some("common"), Some("version" | "about")) => Class::UncacheableRead,
        (Some("db"), Some("list" | "server_version" | "list_lang" | "db_exist")) => {
            Class::UncacheableRead
        }
        _ => Class::Write,
    }
}

impl Call {
    /// The class of this call (see the module docs). Depends only on the parsed body and, for
    /// [`Shape::WebJson`], on the exact path; never on a `call_kw` URL suffix.
    pub fn class(&self) -> Class {
        match self.shape {
            Shape::CallKw | Shape::Json2 => {
                self.method.as_deref().map_or(Class::Write, method_class)
            }
            // A button runs arbitrary business code: always a write, but a delete stays a delete.
            Shape::CallButton => match self.method.as_deref() {
                Some("unlink") => Class::Delete,
                _ => Class::Write,
            },
            Shape::JsonRpc | Shape::XmlRpc { .. } => service_class(
                self.service.as_deref(),
                self.service_method.as_deref(),
                self.method.as_deref(),
            ),
            Shape::WebJson => route_class(&self.path),
        }
    }
}

/// Whether `path` is a static file or image: never counted, whatever the method.
fn is_static(path: &str) -> bool {
    // `/<module>/static/...` (`/web/static/...` included): the second segment is `static`.
    if path.split('/').nth(2) == Some("static") {
        return true;
    }
    path == "/favicon.ico"
        || path.starts_with("/web/assets/")
        || path == "/web/image"
        || path.starts_with("/web/image/")
        || path == "/web/content"
        || path.starts_with("/web/content/")
}

/// The class of a request BridgeCore did not parse (no body, not a JSON content type, a body
/// too large to read first, or a non-RPC route), so that limits and invalidation still apply.
///
/// - `None` when it does not count: `GET`, `HEAD`, `OPTIONS` and `TRACE` of anything, static
///   files and images, and the websocket/longpolling endpoints;
/// - `Some(Auth)` for `POST /web/login` and `/web/session/authenticate`;
/// - for the JSON routes whose path decides the class (`/web/session/*`, the other known JSON
///   routes, `/json/2/<model>/<method>`), that class;
/// - `Some(Write)` for everything else: unknown POST routes, `call_kw` (its URL suffix is never
///   trusted), `call_button`, `/jsonrpc`, XML-RPC, the database manager, and any method other
///   than the safe ones above (`POST`, `PUT`, `PATCH`, `DELETE`, extensions).
pub fn class_of_unparsed(method: &Method, endpoint: &Endpoint, path: &str) -> Option<Class> {
    if matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return None;
    }
    match endpoint {
        Endpoint::Websocket => None,
        Endpoint::Session | Endpoint::WebJson => Some(route_class(path)),
        Endpoint::Json2 { method, .. } => Some(method_class(method)),
        Endpoint::Other if path == "/web/login" => Some(Class::Auth),
        Endpoint::Other if is_static(path) => None,
        Endpoint::CallKw
        | Endpoint::CallButton
        | Endpoint::JsonRpc
        | Endpoint::XmlRpc { .. }
        | Endpoint::DatabaseManager
        | Endpoint::Other => Some(Class::Write),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::jsonrpc::parse;
    use crate::route::endpoint;

    /// Parses `body` as a request to `path` with a session cookie.
    fn call(path: &str, body: &str) -> Call {
        let (head, ()) = http::Request::post(path)
            .header("cookie", "session_id=abc")
            .body(())
            .unwrap()
            .into_parts();
        parse(&endpoint(path), &head, body.as_bytes()).unwrap()
    }

    fn call_kw(method: &str) -> Call {
        call(
            "/web/dataset/call_kw",
            &format!(
                r#"{{"jsonrpc":"2.0","method":"call","id":1,"params":{{"model":"res.partner","method":"{method}","args":[],"kwargs":{{}}}}}}"#
            ),
        )
    }

    fn jsonrpc(service: &str, method: &str, args: &str) -> Call {
        call(
            "/jsonrpc",
            &format!(
                r#"{{"jsonrpc":"2.0","method":"call","params":{{"service":"{service}","method":"{method}","args":{args}}},"id":3}}"#
            ),
        )
    }

    fn xmlrpc_execute_kw(method: &str) -> Call {
        call(
            "/xmlrpc/2/object",
            &format!(
                "<?xml version='1.0'?><methodCall><methodName>execute_kw</methodName><params>\
                 <param><value><string>prod</string></value></param>\
                 <param><value><int>2</int></value></param>\
                 <param><value><string>secret</string></value></param>\
                 <param><value><string>res.partner</string></value></param>\
                 <param><value><string>{method}</string></value></param>\
                 <param><value><array><data/></array></value></param>\
                 </params></methodCall>"
            ),
        )
    }

    #[test]
    fn categories_and_labels() {
        let all = [
            (
                Class::CacheableRead,
                Category::Read,
                false,
                "cacheable_read",
            ),
            (
                Class::UncacheableRead,
                Category::Read,
                false,
                "uncacheable_read",
            ),
            (Class::Write, Category::Write, true, "write"),
            (Class::Delete, Category::Delete, true, "delete"),
            (Class::Auth, Category::Auth, false, "auth"),
        ];
        for (class, category, write, label) in all {
            assert_eq!(class.category(), category);
            assert_eq!(class.is_write(), write);
            assert_eq!(class.as_str(), label);
        }
        assert_eq!(Category::Auth.as_str(), "auth");
        assert_eq!(Category::Read.as_str(), "read");
        assert_eq!(Category::Write.as_str(), "write");
        assert_eq!(Category::Delete.as_str(), "delete");
    }

    #[test]
    fn allowlist_is_sorted_and_unique() {
        assert!(CACHEABLE_METHODS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(CACHEABLE_METHODS.len(), 29);
        for m in CACHEABLE_METHODS {
            assert_eq!(method_class(m), Class::CacheableRead, "{m}");
        }
    }

    #[test]
    fn method_classes() {
        assert_eq!(method_class("unlink"), Class::Delete);
        assert_eq!(method_class("onchange"), Class::UncacheableRead);
        assert_eq!(method_class("copy_data"), Class::UncacheableRead);
        for m in [
            "create",
            "write",
            "copy",
            "name_create",
            "web_save",
            "toggle_active",
            "action_archive",
            "load",
            "message_post",
            "action_confirm",
            "button_validate",
            "execute",
            "_read",
            "_search",
            "",
            "READ",
            "read ",
            "search_read_x",
        ] {
            assert_eq!(method_class(m), Class::Write, "{m:?}");
        }
    }

    #[test]
    fn call_kw_classes() {
        assert_eq!(call_kw("web_search_read").class(), Class::CacheableRead);
        assert_eq!(call_kw("read").class(), Class::CacheableRead);
        assert_eq!(call_kw("onchange").class(), Class::UncacheableRead);
        assert_eq!(call_kw("write").class(), Class::Write);
        assert_eq!(call_kw("unlink").class(), Class::Delete);
        assert_eq!(call_kw("_private").class(), Class::Write);
        assert_eq!(call_kw("action_confirm").class(), Class::Write);
    }

    #[test]
    fn url_suffix_is_ignored() {
        let c = call(
            "/web/dataset/call_kw/res.partner/read",
            r#"{"jsonrpc":"2.0","method":"call","id":1,"params":{"model":"res.partner","method":"unlink","args":[[7]],"kwargs":{}}}"#,
        );
        assert_eq!(c.class(), Class::Delete);
        let c = call(
            "/web/dataset/call_kw/res.partner/unlink",
            r#"{"jsonrpc":"2.0","method":"call","id":1,"params":{"model":"res.partner","method":"read","args":[[7]],"kwargs":{}}}"#,
        );
        assert_eq!(c.class(), Class::CacheableRead);
    }

    #[test]
    fn call_button_is_always_a_write() {
        let body = |m: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","method":"call","id":1,"params":{{"model":"sale.order","method":"{m}","args":[[42]],"kwargs":{{}}}}}}"#
            )
        };
        let path = "/web/dataset/call_button";
        assert_eq!(call(path, &body("action_confirm")).class(), Class::Write);
        assert_eq!(call(path, &body("read")).class(), Class::Write);
        assert_eq!(call(path, &body("search_read")).class(), Class::Write);
        assert_eq!(call(path, &body("onchange")).class(), Class::Write);
        assert_eq!(call(path, &body("unlink")).class(), Class::Delete);
    }

    #[test]
    fn jsonrpc_classes() {
        let kw = |m: &str| format!(r#"["prod",2,"secret","res.partner","{m}",[[]],{{}}]"#);
        assert_eq!(
            jsonrpc("object", "execute_kw", &kw("search_read")).class(),
            Class::CacheableRead
        );
        assert_eq!(
            jsonrpc("object", "execute_kw", &kw("write")).class(),
            Class::Write
        );
        assert_eq!(
            jsonrpc("object", "execute_kw", &kw("unlink")).class(),
            Class::Delete
        );
        assert_eq!(
            jsonrpc("object", "execute_kw", &kw("copy_data")).class(),
            Class::UncacheableRead
        );
        assert_eq!(
            jsonrpc(
                "object",
                "execute",
                r#"["prod",2,"pw","res.partner","search",[]]"#
            )
            .class(),
            Class::CacheableRead
        );
        assert_eq!(jsonrpc("object", "other", "[]").class(), Class::Write);
        assert_eq!(
            jsonrpc("common", "login", r#"["prod","admin","pw"]"#).class(),
            Class::Auth
        );
        assert_eq!(
            jsonrpc("common", "authenticate", r#"["prod","admin","pw",{}]"#).class(),
            Class::Auth
        );
        assert_eq!(
            jsonrpc("common", "version", "[]").class(),
            Class::UncacheableRead
        );
        assert_eq!(
            jsonrpc("common", "about", "[]").class(),
            Class::UncacheableRead
        );
        assert_eq!(
            jsonrpc("common", "set_loglevel", "[]").class(),
            Class::Write
        );
        for m in ["list", "server_version", "list_lang", "db_exist"] {
            assert_eq!(
                jsonrpc("db", m, "[]").class(),
                Class::UncacheableRead,
                "{m}"
            );
        }
        for m in [
            "drop",
            "create_database",
            "dump",
            "restore",
            "rename",
            "change_admin_password",
        ] {
            assert_eq!(
                jsonrpc("db", m, r#"["master"]"#).class(),
                Class::Write,
                "{m}"
            );
        }
        assert_eq!(
            jsonrpc("report", "render_report", "[]").class(),
            Class::Write
        );
    }

    #[test]
    fn xmlrpc_classes() {
        assert_eq!(
            xmlrpc_execute_kw("search_count").class(),
            Class::CacheableRead
        );
        assert_eq!(xmlrpc_execute_kw("create").class(), Class::Write);
        assert_eq!(xmlrpc_execute_kw("unlink").class(), Class::Delete);
        let login = call(
            "/xmlrpc/common",
            "<methodCall><methodName>login</methodName><params>\
             <param><value>prod</value></param><param><value>admin</value></param>\
             <param><value>pw</value></param></params></methodCall>",
        );
        assert_eq!(login.class(), Class::Auth);
        let version = call(
            "/xmlrpc/2/common",
            "<methodCall><methodName>version</methodName></methodCall>",
        );
        assert_eq!(version.class(), Class::UncacheableRead);
    }

    #[test]
    fn json2_classes() {
        assert_eq!(
            call(
                "/json/2/res.partner/search_read",
                r#"{"domain":[],"limit":5}"#
            )
            .class(),
            Class::CacheableRead
        );
        assert_eq!(
            call("/json/2/res.partner/unlink", r#"{"ids":[1]}"#).class(),
            Class::Delete
        );
        assert_eq!(
            call("/json/2/sale.order/action_confirm", r#"{"ids":[1]}"#).class(),
            Class::Write
        );
    }

    #[test]
    fn web_json_classes() {
        let env = r#"{"jsonrpc":"2.0","method":"call","params":{},"id":1}"#;
        let auth = r#"{"jsonrpc":"2.0","method":"call","params":{"db":"prod","login":"admin","password":"secret"},"id":1}"#;
        assert_eq!(call("/web/session/authenticate", auth).class(), Class::Auth);
        for path in [
            "/web/action/load",
            "/web/session/get_session_info",
            "/web/session/check",
            "/web/session/modules",
            "/web/session/get_lang_list",
            "/web/webclient/version_info",
            "/websocket/peek_notifications",
            "/web/dataset/search_read",
            "/web/dataset/load",
        ] {
            assert_eq!(call(path, env).class(), Class::UncacheableRead, "{path}");
        }
        for path in [
            "/web/dataset/resequence",
            "/web/action/run",
            "/web/session/destroy",
            "/web/session/account",
            "/web/session/change_password",
            "/web/dataset/call",
            "/websocket/update_bus_presence",
            "/websocket/on_closed",
        ] {
            assert_eq!(call(path, env).class(), Class::Write, "{path}");
        }
    }

    #[test]
    fn unparsed_requests() {
        let class = |m: Method, path: &str| class_of_unparsed(&m, &endpoint(path), path);
        for m in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            for path in [
                "/web/dataset/call_kw",
                "/web/login",
                "/anything",
                "/web/database/drop",
            ] {
                assert_eq!(class(m.clone(), path), None, "{m} {path}");
            }
        }
        assert_eq!(class(Method::POST, "/web/static/src/x.js"), None);
        assert_eq!(class(Method::POST, "/sale/static/src/x.js"), None);
        assert_eq!(
            class(Method::POST, "/web/assets/123/web.assets_web.min.js"),
            None
        );
        assert_eq!(
            class(Method::POST, "/web/image/res.partner/3/avatar_128"),
            None
        );
        assert_eq!(class(Method::POST, "/web/content/42"), None);
        assert_eq!(class(Method::POST, "/websocket"), None);
        assert_eq!(class(Method::POST, "/longpolling/poll"), None);
        assert_eq!(class(Method::POST, "/web/login"), Some(Class::Auth));
        assert_eq!(
            class(Method::POST, "/web/session/authenticate"),
            Some(Class::Auth)
        );
        assert_eq!(
            class(Method::POST, "/web/session/get_session_info"),
            Some(Class::UncacheableRead)
        );
        assert_eq!(
            class(Method::POST, "/json/2/res.partner/search_read"),
            Some(Class::CacheableRead)
        );
        // The call_kw suffix is never trusted.
        assert_eq!(
            class(Method::POST, "/web/dataset/call_kw/res.partner/read"),
            Some(Class::Write)
        );
        for path in [
            "/web/dataset/call_button",
            "/jsonrpc",
            "/xmlrpc/2/object",
            "/web/database/drop",
            "/mail/message/post",
            "/web/binary/upload_attachment",
            "/report/download",
            "/web/staticx",
        ] {
            assert_eq!(class(Method::POST, path), Some(Class::Write), "{path}");
        }
        for m in [Method::PUT, Method::PATCH, Method::DELETE, Method::CONNECT] {
            assert_eq!(class(m.clone(), "/anything"), Some(Class::Write), "{m}");
        }
        let custom = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(class(custom, "/anything"), Some(Class::Write));
    }
}
